// A small HTTP proxy in front of the test registry, standing in for the network between cell and
// registry: it records requests, and can corrupt blobs, demand Bearer tokens or stop answering.
import { once } from "node:events";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";

export interface ProxyOptions {
  /** Flip one byte in the body of blob responses whose digest this returns true for. */
  corrupt?: (digest: string) => boolean;
  /** Demand anonymous Bearer tokens, handed out by GET /token on the proxy. */
  bearer?: boolean;
  /** Flip one byte in every manifest response body. */
  corruptManifests?: boolean;
  /** Never answer manifest requests (hold them open). */
  stallManifests?: boolean;
  /** Send half the body of matching blobs, then go silent while holding the connection open. */
  stallBlob?: (digest: string) => boolean;
}

export interface RegistryProxy {
  /** "127.0.0.1:port". */
  url: string;
  /** "GET /v2/org/img/manifests/latest", in arrival order. */
  requests: string[];
  blobGets(): string[];
  /** Resolves when the first request arrives. */
  received: Promise<void>;
  /** Resolves once a stalled blob's first half has been sent. */
  stalled: Promise<void>;
  close(): Promise<void>;
}

const TOKEN = "test-token-123";
const BLOB = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/;

export async function startRegistryProxy(upstream: string, opts: ProxyOptions = {}): Promise<RegistryProxy> {
  const requests: string[] = [];
  let port = 0;
  let onStalled: () => void = () => {};
  const stalled = new Promise<void>((resolve) => (onStalled = resolve));
  let onReceived: () => void = () => {};
  const received = new Promise<void>((resolve) => (onReceived = resolve));
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    requests.push(`${req.method} ${path}`);
    onReceived();
    if (opts.bearer && path === "/token") return sendToken(res);
    if (opts.bearer && path.startsWith("/v2/") && req.headers.authorization !== `Bearer ${TOKEN}`) {
      return challenge(res, port, path);
    }
    const blob = BLOB.exec(path)?.[1];
    if (opts.stallManifests && path.includes("/manifests/")) return; // Never answered.
    const get = blob !== undefined && req.method === "GET";
    const manifest = req.method === "GET" && path.includes("/manifests/");
    forward(upstream, req, res, {
      corrupt: (get && (opts.corrupt?.(blob) ?? false)) || (manifest && (opts.corruptManifests ?? false)),
      stall: get && (opts.stallBlob?.(blob) ?? false) ? onStalled : undefined,
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("proxy has no address");
  port = address.port;
  return {
    url: `127.0.0.1:${port}`,
    requests,
    blobGets: () => requests.filter((r) => r.startsWith("GET ") && BLOB.test(r.slice(4))),
    stalled,
    received,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

function forward(
  upstream: string,
  req: IncomingMessage,
  res: ServerResponse,
  how: { corrupt: boolean; stall: (() => void) | undefined },
): void {
  const [hostname, port] = upstream.split(":");
  const headers = { ...req.headers, host: upstream };
  delete headers.authorization;
  const out = request({ hostname, port: Number(port), method: req.method, path: req.url, headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    if (!how.corrupt && !how.stall) return void up.pipe(res);
    const parts: Buffer[] = [];
    up.on("data", (chunk: Buffer) => parts.push(chunk));
    up.on("end", () => {
      const body = Buffer.concat(parts);
      const middle = Math.floor(body.length / 2);
      if (how.stall) return void res.write(body.subarray(0, middle), () => how.stall?.());
      body[middle] = body[middle]! ^ 0xff;
      res.end(body);
    });
  });
  out.on("error", () => res.destroy());
  req.pipe(out);
}

function challenge(res: ServerResponse, port: number, path: string): void {
  const repo = /^\/v2\/(.+)\/(?:manifests|blobs)\//.exec(path)?.[1] ?? "";
  res.writeHead(401, {
    "content-type": "application/json",
    "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="repository:${repo}:pull"`,
  });
  res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
}

function sendToken(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ token: TOKEN, expires_in: 300 }));
}
