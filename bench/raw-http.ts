import net from "node:net";

// A minimal HTTP/1.1 load client: one keep-alive socket per concurrent caller, requests written
// as ready-made strings, replies parsed only as far as status and Content-Length. node:http's
// client costs about 100 µs of CPU per call, as much as the receptor's own work on a trivial
// request, and it shares the receptor's two cores; this costs a fraction of that, so its rows
// show what the server can do when the load generator is not the bottleneck (as wrk would).

export interface RawHttp {
  /** Sends one request on a free connection; resolves with the status code. */
  call(method: string, path: string, body?: string): Promise<number>;
  close(): void;
}

interface Conn {
  socket: net.Socket;
  buffered: Buffer;
  waiting?: { resolve(status: number): void; reject(err: Error): void };
}

export async function createRawHttp(address: string, connections: number): Promise<RawHttp> {
  const [host, port] = address.split(":");
  const idle: Conn[] = [];
  const queued: Array<(c: Conn) => void> = [];
  const all: Conn[] = [];

  const release = (c: Conn): void => {
    const next = queued.shift();
    if (next) next(c);
    else idle.push(c);
  };

  const open = (): Promise<Conn> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host, port: Number(port), noDelay: true }, () => resolve(c));
      const c: Conn = { socket, buffered: Buffer.alloc(0) };
      socket.once("error", reject);
      socket.on("data", (chunk: Buffer) => {
        c.buffered = c.buffered.length ? Buffer.concat([c.buffered, chunk]) : chunk;
        const status = takeResponse(c);
        if (status === undefined) return;
        const w = c.waiting!;
        c.waiting = undefined;
        release(c);
        w.resolve(status);
      });
      socket.on("close", () => c.waiting?.reject(new Error("connection closed")));
    });

  for (let i = 0; i < connections; i++) {
    const c = await open();
    all.push(c);
    idle.push(c);
  }

  return {
    call(method, path, body) {
      return new Promise((resolve, reject) => {
        const send = (c: Conn): void => {
          c.waiting = { resolve, reject };
          const head = `${method} ${path} HTTP/1.1\r\nHost: ${address}\r\n`;
          c.socket.write(
            body === undefined
              ? `${head}Content-Length: 0\r\n\r\n`
              : `${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
          );
        };
        const c = idle.pop();
        if (c) send(c);
        else queued.push(send);
      });
    },
    close() {
      for (const c of all) c.socket.destroy();
    },
  };
}

/** The status of one complete response at the front of the buffer (removed), if there is one. */
function takeResponse(c: Conn): number | undefined {
  const b = c.buffered;
  const end = b.indexOf(HEAD_END);
  if (end < 0) return undefined;
  // Byte searches, not a string and a regex per reply: this client is meant to cost little.
  let at = b.indexOf(CONTENT_LENGTH);
  if (at < 0 || at > end) at = b.indexOf(CONTENT_LENGTH_LOWER);
  let length = 0;
  if (at >= 0 && at < end) {
    for (let i = at + CONTENT_LENGTH.length; i < end; i++) {
      const d = b[i]! - 48;
      if (d >= 0 && d <= 9) length = length * 10 + d;
      else if (b[i] !== 32) break;
    }
  }
  if (b.length < end + 4 + length) return undefined;
  c.buffered = b.subarray(end + 4 + length);
  return (b[9]! - 48) * 100 + (b[10]! - 48) * 10 + (b[11]! - 48);
}

const HEAD_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = Buffer.from("\r\nContent-Length:");
const CONTENT_LENGTH_LOWER = Buffer.from("\r\ncontent-length:");
