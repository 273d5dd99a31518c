import type { Req, Res } from "../http/types.js";

/** One REST route: a method, a path pattern whose groups are the (percent-decoded) params. */
export interface Route {
  method: string;
  pattern: RegExp;
  /** The path with its parameters named ("/v1/tasks/:guid"): the route label of its metrics. */
  label: string;
  /** Server-Sent Events: no HEAD, which would hold the stream open for nothing. */
  streams?: boolean;
  handle(req: Req, res: Res, params: string[], query: URLSearchParams): Promise<void>;
}
