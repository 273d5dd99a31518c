import { createParser, type EventSourceMessage } from "eventsource-parser";
import { ApiError, ApiUnreachableError } from "./errors.js";

// The REST API through Node's fetch: bodies come back as text, so that callers can pass JSON
// through unchanged (`created_at` has more digits than a JS number keeps).

export interface ApiOptions {
  /** e.g. http://127.0.0.1:8888, without a trailing slash. */
  baseUrl: string;
  /** The Authorization header value, if any. */
  authorization?: string;
}

export interface ApiClient {
  readonly baseUrl: string;
  /** The body of a 2xx answer; an ApiError otherwise. */
  request(method: string, path: string, body?: string): Promise<string>;
  /** Opens a Server-Sent Events stream: resolves once the API accepted it. */
  openStream(path: string, signal: AbortSignal): Promise<AsyncIterable<EventSourceMessage>>;
}

export function createApiClient(opts: ApiOptions): ApiClient {
  const headers = (extra: Record<string, string>): Record<string, string> =>
    opts.authorization ? { ...extra, Authorization: opts.authorization } : extra;

  const send = async (method: string, path: string, init: { body?: string; signal?: AbortSignal; accept: string }): Promise<Response> => {
    const url = opts.baseUrl + path;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        body: init.body,
        signal: init.signal,
        headers: headers(init.body === undefined ? { Accept: init.accept } : { Accept: init.accept, "Content-Type": "application/json" }),
      });
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      throw new ApiUnreachableError(opts.baseUrl, describeFetchFailure(err));
    }
    if (!res.ok) throw await apiErrorOf(res, method, url);
    return res;
  };

  return {
    baseUrl: opts.baseUrl,
    async request(method, path, body) {
      const res = await send(method, path, { body, accept: "application/json" });
      return res.text();
    },
    async openStream(path, signal) {
      const res = await send("GET", path, { signal, accept: "text/event-stream" });
      return sseMessages(res, signal);
    },
  };
}

async function* sseMessages(res: Response, signal: AbortSignal): AsyncIterable<EventSourceMessage> {
  const ready: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (m) => ready.push(m) });
  const decoder = new TextDecoder();
  if (!res.body) return;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      while (ready.length > 0) yield ready.shift()!;
    }
  } catch (err) {
    // The caller stopped listening: not an error.
    if (signal.aborted) return;
    throw new ApiUnreachableError(res.url, `stream broken: ${describeFetchFailure(err)}`);
  }
}

/** ECONNREFUSED and the like, which fetch hides in `cause`. */
function describeFetchFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message === "bad port") return "a port fetch refuses to use, as browsers do";
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

async function apiErrorOf(res: Response, method: string, url: string): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { name?: unknown; message?: unknown };
    if (typeof body.name === "string") return new ApiError(body.name, String(body.message ?? ""), res.status);
  } catch {
    // Not the API's JSON error (a proxy's page, say): described by its status below.
  }
  return new ApiError(`HTTP ${res.status}`, `${res.statusText || "error"} from ${method} ${url}`, res.status);
}
