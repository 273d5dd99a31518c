import type http from "node:http";
import type http2 from "node:http2";

/** A request or reply of either HTTP version: one server takes both. */
export type Req = http.IncomingMessage | http2.Http2ServerRequest;
export type Res = http.ServerResponse | http2.Http2ServerResponse;
