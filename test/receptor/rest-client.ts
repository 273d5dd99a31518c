// A tiny REST client for the receptor tests: every call returns status, headers and the raw body
// text, so tests can check bytes (created_at digits, Content-Length) as well as parsed JSON.

export interface RestReply {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON (throws when it is not JSON). */
  json<T = unknown>(): T;
}

export interface ErrorBody {
  name: string;
  message: string;
}

export interface RestClient {
  readonly url: string;
  request(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<RestReply>;
  createTask(body: unknown): Promise<RestReply>;
  getTask(guid: string): Promise<RestReply>;
  cancelTask(guid: string): Promise<RestReply>;
  deleteTask(guid: string): Promise<RestReply>;
}

export interface RestClientOptions {
  /** Sees every reply (e.g. to check that none was a 500). */
  onReply?(reply: RestReply): void;
  /** Sent with every request (e.g. authorization). */
  headers?: Record<string, string>;
}

export function createRestClient(url: string, opts: RestClientOptions = {}): RestClient {
  const request = async (
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<RestReply> => {
    const res = await fetch(url + path, { method, body, headers: { ...opts.headers, ...headers } });
    const text = await res.text();
    const reply = { status: res.status, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
    opts.onReply?.(reply);
    return reply;
  };
  const guidPath = (guid: string): string => `/v1/tasks/${encodeURIComponent(guid)}`;
  return {
    url,
    request,
    createTask: (body) =>
      request("POST", "/v1/tasks", typeof body === "string" ? body : JSON.stringify(body), {
        "Content-Type": "application/json",
      }),
    getTask: (guid) => request("GET", guidPath(guid)),
    cancelTask: (guid) => request("POST", `${guidPath(guid)}/cancel`),
    deleteTask: (guid) => request("DELETE", guidPath(guid)),
  };
}

let counter = 0;

/** A guid no other test in this process uses. */
export function uniqueGuid(prefix = "task"): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
