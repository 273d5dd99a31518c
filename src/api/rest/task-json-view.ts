import type { TaskResponse } from "../../gen/diego/v1/task_pb.js";
import { taskResponseToJson } from "../../model/index.js";
import { defineView, type IndexedTask } from "../../store/index.js";

/** A task's REST JSON as UTF-8, made once per stored revision and cached in the index. */
export const taskJsonView = defineView("rest-json", (t: IndexedTask): Buffer =>
  Buffer.from(taskResponseToJson(t.transientRecord().task as TaskResponse)),
);
