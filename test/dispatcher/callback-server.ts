import http from "node:http";
import type { AddressInfo } from "node:net";

// A real HTTP server on 127.0.0.1:0 standing in for a user's callback endpoint. Each request is
// recorded; answer() picks the status per request, or "hang" to never answer.

export interface ReceivedCallback {
  path: string;
  guid: string;
  /** Calls of this path so far, this one included. */
  nth: number;
  at: number;
  contentType: string | undefined;
  body: Record<string, unknown>;
  /** Set when the connection of a hanging request closed (the caller gave up or died). */
  closedAt?: number;
}

export type Answer = number | "hang";

export interface CallbackServer {
  readonly base: string;
  url(guid: string, prefix?: string): string;
  readonly received: ReceivedCallback[];
  callsFor(guid: string): ReceivedCallback[];
  /** Most requests open at the same time. */
  maxOpen(): number;
  close(): Promise<void>;
}

export async function startCallbackServer(answer: (call: ReceivedCallback) => Answer): Promise<CallbackServer> {
  const received: ReceivedCallback[] = [];
  const counts = new Map<string, number>();
  let open = 0;
  let maxOpen = 0;
  const server = http.createServer((req, res) => {
    open += 1;
    maxOpen = Math.max(maxOpen, open);
    let done = false;
    const finish = (): void => {
      if (!done) open -= 1;
      done = true;
    };
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (raw += c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const nth = (counts.get(path) ?? 0) + 1;
      counts.set(path, nth);
      const call: ReceivedCallback = {
        path,
        guid: path.split("/").pop() ?? "",
        nth,
        at: Date.now(),
        contentType: req.headers["content-type"],
        body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {},
      };
      received.push(call);
      const a = answer(call);
      if (a === "hang") {
        res.on("close", () => {
          call.closedAt = Date.now();
          finish();
        });
        return;
      }
      res.writeHead(a, { "Content-Type": "text/plain" }).end("ok");
      finish();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    url: (guid, prefix = "cb") => `${base}/${prefix}/${guid}`,
    received,
    callsFor: (guid) => received.filter((c) => c.guid === guid),
    maxOpen: () => maxOpen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function refusedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
