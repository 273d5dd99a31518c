import net from "node:net";

// A NATS client in a few lines of the wire protocol, as an attacker on the machine would write
// one: no library that might refuse to send what a test wants sent.

/**
 * Connects to 127.0.0.1:`port`, waits for the server's INFO, sends `payload`, and returns what the
 * server sent after INFO, once it answered PONG or closed the connection.
 */
export function rawNatsSession(port: number, payload: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    let sent = false;
    const finish = (): void => {
      socket.destroy();
      resolve(received.replace(/^INFO [^\r\n]*\r\n/, ""));
    };
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (!sent && received.includes("\r\n")) {
        sent = true;
        socket.write(payload);
      }
      if (sent && /^(PONG|-ERR)/m.test(received.replace(/^INFO [^\r\n]*\r\n/, ""))) {
        // -ERR: the server closes next; wait for that, so nothing it sends after is missed.
        if (!received.includes("-ERR")) finish();
      }
    });
    socket.on("close", finish);
    socket.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? finish() : reject(err)));
  });
}

/** CONNECT with `fields` (user, pass, ...), then PUB each message, then PING. */
export function rawNatsPublish(fields: Record<string, unknown>, messages: Array<{ subject: string; data: Uint8Array }>): Buffer {
  const parts: Buffer[] = [Buffer.from(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, ...fields })}\r\n`)];
  for (const m of messages) {
    parts.push(Buffer.from(`PUB ${m.subject} ${m.data.length}\r\n`), Buffer.from(m.data), Buffer.from("\r\n"));
  }
  parts.push(Buffer.from("PING\r\n"));
  return Buffer.concat(parts);
}
