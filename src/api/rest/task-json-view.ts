import type { TaskResponse } from "../../gen/diego/v1/task_pb.js";
import { taskResponseToJson } from "../../model/index.js";
import { defineBytesView, type IndexedTask } from "../../store/index.js";

/** A task's REST JSON as UTF-8, made once per stored revision and kept in the index's arena. */
export const taskJsonView = defineBytesView("rest-json", (t: IndexedTask): Buffer =>
  Buffer.from(taskResponseToJson(t.transientRecord().task as TaskResponse)),
);
