import http from "node:http";

// A Server-Sent Events reader for the receptor tests: collects each `event:`/`data:` frame and
// lets a test await the frames it expects.

export interface SseFrame {
  event: string;
  data: string;
}

export interface SseStream {
  readonly frames: SseFrame[];
  /** Resolves once a frame satisfies `match` (looking at those already received too). */
  waitFor(match: (f: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  close(): void;
}

/** Opens `url` (a /v1/events URL) and resolves once the stream's first comment has arrived. */
export function openSse(url: string): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const frames: SseFrame[] = [];
    const waiters = new Set<() => unknown>();
    const req = http.get(url, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`events answered ${res.statusCode}`));
      res.setEncoding("utf8");
      let buffered = "";
      let opened = false;
      res.on("data", (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const lines = block.split("\n");
          const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
          const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
          if (event !== undefined && data !== undefined) frames.push({ event, data });
        }
        for (const w of waiters) w();
        if (!opened) {
          opened = true;
          resolve(stream);
        }
      });
    });
    req.on("error", (err) => reject(err));
    const stream: SseStream = {
      frames,
      waitFor(match, timeoutMs = 10_000) {
        return new Promise((ok, fail) => {
          const check = (): boolean => {
            const f = frames.find(match);
            if (!f) return false;
            waiters.delete(check);
            clearTimeout(timer);
            ok(f);
            return true;
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            fail(new Error(`no matching event within ${timeoutMs} ms; got ${frames.map((f) => f.event).join(", ")}`));
          }, timeoutMs);
          if (!check()) waiters.add(check);
        });
      },
      close: () => req.destroy(),
    };
  });
}
