import http from "node:http";
import https from "node:https";
import { CallbackTimeoutError } from "./errors.js";

// One POST of a callback body. Never throws: the caller only needs to know whether some
// response came back (and its status), or why none did.

export type CallbackOutcome =
  | { kind: "response"; status: number }
  | { kind: "timeout" }
  | { kind: "aborted" }
  | { kind: "error"; message: string };

export interface PostOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  agents?: { http: http.Agent; https: https.Agent };
}

export function postCallback(url: string, body: string, opts: PostOptions): Promise<CallbackOutcome> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve({ kind: "error", message: `invalid callback url '${url}'` });
  }
  const secure = target.protocol === "https:";
  if (!secure && target.protocol !== "http:") {
    return Promise.resolve({ kind: "error", message: `unsupported callback scheme '${target.protocol}'` });
  }
  if (opts.signal?.aborted) return Promise.resolve({ kind: "aborted" });

  return new Promise((resolve) => {
    const payload = Buffer.from(body);
    const req = (secure ? https : http).request(target, {
      method: "POST",
      agent: secure ? opts.agents?.https : opts.agents?.http,
      headers: { "Content-Type": "application/json", "Content-Length": payload.length },
    });
    let settled = false;
    const settle = (o: CallbackOutcome): void => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
    // The deadline covers connect, request and response body: a server that stalls anywhere
    // must not hold a slot.
    const timer = setTimeout(() => req.destroy(new CallbackTimeoutError(opts.timeoutMs)), opts.timeoutMs);
    const onAbort = (): void => void req.destroy(new DOMException("aborted", "AbortError"));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    };

    req.on("response", (res) => {
      settle({ kind: "response", status: res.statusCode ?? 0 });
      res.on("end", cleanup);
      res.on("error", cleanup);
      res.resume();
    });
    req.on("error", (err) => {
      cleanup();
      if (err instanceof CallbackTimeoutError) settle({ kind: "timeout" });
      else if (err.name === "AbortError") settle({ kind: "aborted" });
      else settle({ kind: "error", message: err.message });
    });
    req.end(payload);
  });
}
