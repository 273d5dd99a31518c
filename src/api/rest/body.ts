import { parseJsonBody } from "../../model/index.js";
import { readBody } from "../http/read-body.js";
import type { Req } from "../http/types.js";

/** A request's JSON body, parsed (InvalidJSON when it is not JSON; RequestTooLarge over 1 MiB). */
export async function readJsonBody(req: Req): Promise<unknown> {
  return parseJsonBody((await readBody(req)).toString("utf8"));
}
