import { durationSetting, listSetting, stringSetting } from "../settings/index.js";

// The receptor's address, TLS, API credentials, CORS and connection timeouts.

export const receptorSettings = {
  listen: stringSetting({ flag: "listen", env: "DIEGO_LISTEN", default: "127.0.0.1:8888", help: "receptor address (gRPC, Connect and REST on one port)" }),
  tlsCert: stringSetting({ flag: "tls-cert", env: "DIEGO_TLS_CERT", default: "", help: "PEM certificate file: serve the API over TLS (ALPN picks HTTP/2 or HTTP/1.1)" }),
  tlsKey: stringSetting({ flag: "tls-key", env: "DIEGO_TLS_KEY", default: "", help: "PEM private key file for --tls-cert" }),
  authUser: stringSetting({ flag: "auth-user", env: "DIEGO_AUTH_USER", default: "", help: "API Basic auth user (with --auth-password); empty: no Basic auth" }),
  authPassword: stringSetting({ flag: "auth-password", env: "DIEGO_AUTH_PASSWORD", default: "", help: "API Basic auth password (prefer the environment variable: flags show in ps)" }),
  authTokenFile: stringSetting({ flag: "auth-token-file", env: "DIEGO_AUTH_TOKEN_FILE", default: "", help: "file of API bearer tokens, one a line (# comments); re-read on SIGHUP" }),
  corsOrigins: listSetting({ flag: "cors-origins", env: "DIEGO_CORS_ORIGINS", default: "", help: "origins allowed cross-origin API calls (comma-separated, * for any); empty: CORS off" }),
  headersTimeout: durationSetting({
    flag: "headers-timeout",
    env: "DIEGO_HEADERS_TIMEOUT",
    default: "60s",
    min: 1,
    help: "an API connection that has not sent a request's headers in this long is closed (HTTP/2: one with no request open)",
  }),
  requestTimeout: durationSetting({
    flag: "request-timeout",
    env: "DIEGO_REQUEST_TIMEOUT",
    default: "5m",
    min: 1,
    help: "a request not wholly received in this long gets 408 and its connection (HTTP/2: stream) is closed",
  }),
} as const;
