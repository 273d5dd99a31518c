import * as grpc from "@grpc/grpc-js";

// Credentials for Node clients of the API. grpc-js will not combine call credentials with an
// insecure (h2c) channel, so the `authorization` metadata is added by an interceptor, which
// works over TLS and cleartext alike.

/** `Bearer <token>`. */
export const bearer = (token: string): string => `Bearer ${token}`;

/** `Basic <base64(user:password)>`. */
export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** A grpc-js client interceptor that sends `authorization: <value>` with every call. */
export function authorizationInterceptor(value: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", value);
        next(metadata, listener);
      },
    });
}
