import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Code } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { createConnectRoutes } from "./connect-services.js";
import { encodeGrpcMessage, useSpecGrpcMessageEncoding } from "./grpc-message.js";
import { createGrpcUnaryHandler } from "./grpc-unary.js";
import { createUnaryHandlers, unaryHandlersByPath } from "./unary-handlers.js";
import { createRestRoutes, MAX_BODY_BYTES } from "./rest-routes.js";
import type { TaskApi } from "./task-api.js";

// One listening address for everything. In cleartext, the first bytes of a connection tell HTTP/2
// with prior knowledge (gRPC, h2c) from HTTP/1.1 (curl, Connect JSON, gRPC-Web), and each goes to
// its server; with TLS, ALPN does the same.

export interface ReceptorServer {
  /** host:port actually bound. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0");

/** gRPC proper (not gRPC-Web, whose status travels in the body). */
const isGrpc = (req: http.IncomingMessage | http2.Http2ServerRequest): boolean =>
  /^application\/grpc(\+|;|$)/.test(req.headers["content-type"] ?? "");

export interface TlsFiles {
  /** PEM certificate chain and private key. */
  cert: Buffer;
  key: Buffer;
}

export async function startReceptorServer(opts: {
  api: TaskApi;
  host: string;
  port: number;
  logger?: Logger;
  /** With TLS, ALPN picks HTTP/2 (gRPC) or HTTP/1.1 on the same port instead of sniffing. */
  tls?: TlsFiles;
  /** A cleartext connection that sends nothing for this long is closed (default 60 s). */
  firstByteTimeoutMs?: number;
  /** An idle REST event stream gets a comment line this often (default 15 s). */
  streamKeepAliveMs?: number;
}): Promise<ReceptorServer> {
  const rest = createRestRoutes(opts.api, opts.logger, { streamKeepAliveMs: opts.streamKeepAliveMs });
  const connect = connectNodeAdapter({
    routes: createConnectRoutes(opts.api, opts.logger),
    readMaxBytes: MAX_BODY_BYTES,
    fallback: answerUnknownPath,
  });
  const grpcUnary = createGrpcUnaryHandler(unaryHandlersByPath(createUnaryHandlers(opts.api)), MAX_BODY_BYTES, opts.logger);
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    if (res instanceof http2.Http2ServerResponse && isGrpc(req)) {
      if (grpcUnary(req as http2.Http2ServerRequest, res)) return;
      useSpecGrpcMessageEncoding(res);
    }
    rest(req, res)
      .then((handled) => {
        if (!handled) connect(req as http.IncomingMessage, res as http.ServerResponse);
      })
      .catch((err: unknown) => {
        opts.logger?.error({ err }, "unhandled request failure");
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  };
  const sockets = new Set<net.Socket>();
  const server = opts.tls
    ? createTlsServer(opts.tls, handler, sockets)
    : createCleartextServer(handler, sockets, opts.firstByteTimeoutMs ?? FIRST_BYTE_TIMEOUT_MS);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const bound = server.address() as net.AddressInfo;
  const host = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  return {
    address: `${host}:${bound.port}`,
    port: bound.port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

/** `/package.Service/Method`, the path of a gRPC or Connect call. */
const SERVICE_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+\/[A-Za-z_]\w*$/;

/** Connect's handler for requests no route takes (its own answers an empty 404). */
type ConnectFallback = NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;

/**
 * Nothing serves this path. A gRPC client is told UNIMPLEMENTED in gRPC's own terms (an HTTP 404
 * would reach it as "Received http2 header with status: 404"); a Connect client gets a 404 with
 * Connect's error body; anyone else gets the REST error.
 */
const answerUnknownPath: ConnectFallback = (req, res) => {
  const path = (req.url ?? "/").split("?")[0];
  const contentType = req.headers["content-type"] ?? "";
  if (/^application\/grpc(-web)?(\+|;|$)/.test(contentType)) {
    const headers = {
      "content-type": contentType.startsWith("application/grpc-web") ? "application/grpc-web+proto" : "application/grpc",
      "grpc-status": String(Code.Unimplemented),
      "grpc-message": encodeGrpcMessage(`unknown method ${path}`),
    };
    if (res instanceof http2.Http2ServerResponse) {
      // Trailers-only: the status in one HEADERS frame that ends the stream. (writeHead and end
      // would send an empty DATA frame after it, and the reset that follows reaches grpc-js first.)
      if (!res.stream.destroyed) res.stream.respond({ ":status": 200, ...headers }, { endStream: true });
    } else {
      res.writeHead(200, headers);
      res.end();
    }
    return;
  }
  // A Connect call (a service path, POSTed): Connect's error body, which its clients read.
  const connectCall = req.method === "POST" && SERVICE_PATH.test(path);
  const body = JSON.stringify(
    connectCall ? { code: "unimplemented", message: `unknown method ${path}` } : { name: "InvalidRequest", message: `no route for ${req.method} ${path}` },
  );
  res.writeHead(404, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(body)) });
  res.end(body);
};

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

function createTlsServer(tls: TlsFiles, handler: Handler, sockets: Set<net.Socket>): net.Server {
  const server = http2.createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: true }, handler);
  server.on("secureConnection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return server;
}

/** As long as node:http waits for a request's headers (its headersTimeout). */
const FIRST_BYTE_TIMEOUT_MS = 60_000;

function createCleartextServer(handler: Handler, sockets: Set<net.Socket>, firstByteTimeoutMs: number): net.Server {
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, handler);
  const h2 = http2.createServer({}, handler);
  // No Nagle delay on replies (http.createServer would set this; sockets come from our server).
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // Until its first bytes say which protocol it speaks, no server of Node's watches the
    // connection: without this, idle connections would hold their descriptors for ever.
    const idle = (): void => void socket.destroy();
    socket.setTimeout(firstByteTimeoutMs, idle);
    socket.once("data", (first: Buffer) => {
      socket.setTimeout(0, idle); // and the listener goes: the server chosen sets its own timeouts
      socket.pause();
      socket.unshift(first);
      const isH2 = first.subarray(0, H2_PREFACE.length).equals(H2_PREFACE.subarray(0, Math.min(first.length, H2_PREFACE.length)));
      if (isH2) {
        // The HTTP/2 session replays the buffered preface on its next tick and then reads the
        // socket natively; resuming the JS stream here would drain (and lose) those bytes first.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    });
    socket.on("error", () => socket.destroy());
  });
  server.on("close", () => {
    h1.close();
    h2.close();
  });
  return server;
}
