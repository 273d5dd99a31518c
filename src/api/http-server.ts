import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { echo } from "../model/index.js";
import type { ApiAuth } from "./auth.js";
import { isOpenPath } from "./auth.js";
import { admitConnectUnary, answerUnknownPath, invalidStreamInput } from "./connect/adapter.js";
import { createConnectRoutes } from "./connect/services.js";
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, watchHttp2Session, type ConnectionTimeouts } from "./connection-timeouts.js";
import { createCors, type CorsHandler } from "./cors.js";
import { replyError } from "./http/error-reply.js";
import { MAX_BODY_BYTES } from "./http/read-body.js";
import { useSpecGrpcMessageEncoding } from "./grpc/grpc-message.js";
import { createGrpcUnaryHandler } from "./grpc/unary.js";
import { observeApiRequest } from "../metrics/index.js";
import { createUnaryHandlers, unaryHandlersByPath } from "./core/unary-handlers.js";
import { createRestRoutes } from "./rest/router.js";
import type { TaskApi } from "./core/task-api.js";
import type { LrpApi } from "./core/lrp-api.js";

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

export interface OperationsRoutes {
  /** Answers the request and returns true, or returns false to pass it on. */
  http(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): boolean;
  routes(router: ConnectRouter): void;
}

export interface TlsFiles {
  /** PEM certificate chain and private key. */
  cert: Buffer;
  key: Buffer;
}

export async function startReceptorServer(opts: {
  api: TaskApi;
  /** The LRP API (REST routes, LRPService, LRP events); none: tasks only. */
  lrpApi?: LrpApi;
  host: string;
  port: number;
  logger?: Logger;
  /** With TLS, ALPN picks HTTP/2 (gRPC) or HTTP/1.1 on the same port instead of sniffing. */
  tls?: TlsFiles;
  /** A cleartext connection that sends nothing for this long is closed (default 60 s). */
  firstByteTimeoutMs?: number;
  /** An idle REST event stream gets a comment line this often (default 15 s). */
  streamKeepAliveMs?: number;
  /** Credentials every call but the open paths (/healthz, ...) must carry; none: all let in. */
  auth?: ApiAuth;
  /** Origins allowed cross-origin calls (`*` for any); empty: no CORS answers. */
  corsOrigins?: readonly string[];
  /** Longest wait for a request's headers (default 60 s). */
  headersTimeoutMs?: number;
  /** Longest wait for a whole request, body included (default 5 min). */
  requestTimeoutMs?: number;
  /** Operator endpoints: probes and metrics over HTTP, health and reflection over gRPC. */
  operations?: OperationsRoutes;
}): Promise<ReceptorServer> {
  const rest = createRestRoutes(opts.api, opts.logger, { streamKeepAliveMs: opts.streamKeepAliveMs, lrp: opts.lrpApi });
  const connect = connectNodeAdapter({
    routes: (router) => {
      createConnectRoutes(opts.api, opts.logger, opts.lrpApi)(router);
      opts.operations?.routes(router);
    },
    readMaxBytes: MAX_BODY_BYTES,
    fallback: answerUnknownPath,
    interceptors: [invalidStreamInput],
  });
  const grpcUnary = createGrpcUnaryHandler(unaryHandlersByPath(createUnaryHandlers(opts.api)), MAX_BODY_BYTES, opts.logger);
  const admit = createAdmission(createCors(opts.corsOrigins ?? []), opts.auth);
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    observeApiRequest(req, res);
    if (!admit(req, res)) return;
    if (opts.operations?.http(req, res)) return;
    if (grpcUnary(req, res)) return;
    if (res instanceof http2.Http2ServerResponse && isGrpc(req)) useSpecGrpcMessageEncoding(res);
    if (!admitConnectUnary(req, res)) return;
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
  const timeouts: ConnectionTimeouts = {
    headersTimeoutMs: opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  };
  const server = opts.tls
    ? createTlsServer(opts.tls, handler, sockets, timeouts)
    : createCleartextServer(handler, sockets, opts.firstByteTimeoutMs ?? FIRST_BYTE_TIMEOUT_MS, timeouts);
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
/** An origin-form path, or an absolute URL that parses (`GET http://[::1 HTTP/1.1` does not). */
const isValidTarget = (url: string | undefined): boolean => url === undefined || url.startsWith("/") || URL.canParse(url);

/**
 * What every request passes before any protocol sees it: a target that parses, CORS (whose
 * preflight is answered here, without credentials), then authentication. Returns false when
 * the request has been answered.
 */
function createAdmission(cors: CorsHandler, auth: ApiAuth | undefined): (...args: Parameters<Handler>) => boolean {
  return (req, res) => {
    if (!isValidTarget(req.url)) {
      replyError(req, res, { status: 400, code: Code.InvalidArgument, name: "InvalidRequest", message: `malformed request target '${echo(req.url ?? "")}'` });
      return false;
    }
    if (cors(req, res) === "preflight-answered") return false;
    if (auth?.enabled && !isOpenPath(req.url) && !auth.check(req.headers.authorization)) {
      const message = req.headers.authorization ? "invalid credentials" : "credentials required (Basic or Bearer authorization)";
      replyError(req, res, { status: 401, code: Code.Unauthenticated, name: "Unauthorized", message, headers: { "WWW-Authenticate": auth.challenge } });
      return false;
    }
    return true;
  };
}

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** node:http's own header and request timeouts, checked this often (its default is 30 s). */
const checkInterval = (t: ConnectionTimeouts): number => Math.max(50, Math.min(1_000, t.headersTimeoutMs / 4));

/**
 * A CONNECT request (a proxy tunnel) is not something the receptor serves; node:http would
 * drop the connection without a word.
 */
function refuseConnect(_req: http.IncomingMessage, socket: net.Socket): void {
  const body = JSON.stringify({ name: "InvalidRequest", message: "method CONNECT is not allowed" });
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, DELETE\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function createTlsServer(tls: TlsFiles, handler: Handler, sockets: Set<net.Socket>, t: ConnectionTimeouts): net.Server {
  const server = http2.createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: true }, handler);
  // For its HTTP/1.1 connections node:http2 runs node:http's checks, which read these
  // properties (not options) once it listens.
  Object.assign(server, { headersTimeout: t.headersTimeoutMs, requestTimeout: t.requestTimeoutMs, connectionsCheckingInterval: checkInterval(t) });
  server.on("session", (session: http2.ServerHttp2Session) => watchHttp2Session(session, t));
  server.on("connect", refuseConnect);
  server.on("secureConnection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return server;
}

/** As long as node:http waits for a request's headers (its headersTimeout). */
const FIRST_BYTE_TIMEOUT_MS = 60_000;

function createCleartextServer(handler: Handler, sockets: Set<net.Socket>, firstByteTimeoutMs: number, t: ConnectionTimeouts): net.Server {
  const h1 = http.createServer(
    { keepAliveTimeout: 65_000, headersTimeout: t.headersTimeoutMs, requestTimeout: t.requestTimeoutMs, connectionsCheckingInterval: checkInterval(t) },
    handler,
  );
  // node:http starts checking those timeouts when it starts listening, which h1 never does:
  // the sockets come from the server below. (h1.close() stops the checks.)
  h1.emit("listening");
  h1.on("connect", refuseConnect);
  const h2 = http2.createServer({}, handler);
  h2.on("session", (session: http2.ServerHttp2Session) => watchHttp2Session(session, t));
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
