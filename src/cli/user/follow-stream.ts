import type { EventSourceMessage } from "eventsource-parser";
import type { ApiClient } from "./api-client.js";
import { ApiError, StreamEndedError } from "./errors.js";

/**
 * The messages of an SSE route until `signal` aborts. A reader that fell behind is told so by the
 * API (`StreamTooSlow`) and reconnects, as docs/api.md asks; any other end of the stream is an
 * error, since the CLI was still listening.
 */
export async function* followStream(
  client: ApiClient,
  path: string,
  signal: AbortSignal,
  note: (text: string) => void,
  opened?: () => void,
): AsyncIterable<EventSourceMessage> {
  for (;;) {
    let messages: AsyncIterable<EventSourceMessage>;
    try {
      messages = await client.openStream(path, signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    opened?.();
    let reconnect = false;
    for await (const m of messages) {
      if (m.event !== "error") {
        yield m;
        continue;
      }
      const e = parseError(m.data);
      if (e.name !== "StreamTooSlow") throw new ApiError(e.name, e.message, 200);
      note(`fell behind the stream (${e.message}); reconnecting, some messages were missed`);
      reconnect = true;
      break;
    }
    if (signal.aborted) return;
    if (!reconnect) throw new StreamEndedError(`the API at ${client.baseUrl} closed the stream ${path}`);
  }
}

function parseError(data: string): { name: string; message: string } {
  try {
    const e = JSON.parse(data) as { name?: unknown; message?: unknown };
    return { name: String(e.name ?? "UnknownError"), message: String(e.message ?? "") };
  } catch {
    return { name: "UnknownError", message: data };
  }
}
