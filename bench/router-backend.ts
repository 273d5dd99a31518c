// Instance stand-ins for bench/router.ts, in their own process: N HTTP servers on 127.0.0.1
// answering a short body with keep-alive. Prints their ports as one JSON line.

import http from "node:http";
import type { AddressInfo } from "node:net";

const count = Number(process.argv[2] ?? 3);
const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const body = Buffer.from(`hello from instance ${i}\n`);
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  ports.push((server.address() as AddressInfo).port);
}
process.stdout.write(`${JSON.stringify(ports)}\n`);
