import { formatDuration, parseDuration } from "../duration/index.js";

// Every setting of every process, with its flag, environment variable and default. The README's
// configuration table is this list.

export type SettingKind = "string" | "int" | "duration" | "list";

export interface SettingDef {
  key: string;
  flag: string;
  env: string;
  kind: SettingKind;
  default: string;
  /** The only values allowed, if the setting is one of a few words. */
  choices?: readonly string[];
  /** The smallest value allowed: a count, or milliseconds for a duration. */
  min?: number;
  /** The largest value allowed, for a whole number. */
  max?: number;
  help: string;
  /** Which commands read it. */
  for: string[];
}

const ALL = ["up", "receptor", "auctioneer", "converger", "dispatcher", "cell"];
const CELL = ["up", "cell"];

export const SETTINGS: SettingDef[] = [
  { key: "listen", flag: "listen", env: "DIEGO_LISTEN", kind: "string", default: "127.0.0.1:8888", help: "receptor address (gRPC, Connect and REST on one port)", for: ["up", "receptor"] },
  { key: "tlsCert", flag: "tls-cert", env: "DIEGO_TLS_CERT", kind: "string", default: "", help: "PEM certificate file: serve the API over TLS (ALPN picks HTTP/2 or HTTP/1.1)", for: ["up", "receptor"] },
  { key: "tlsKey", flag: "tls-key", env: "DIEGO_TLS_KEY", kind: "string", default: "", help: "PEM private key file for --tls-cert", for: ["up", "receptor"] },
  { key: "authUser", flag: "auth-user", env: "DIEGO_AUTH_USER", kind: "string", default: "", help: "API Basic auth user (with --auth-password); empty: no Basic auth", for: ["up", "receptor"] },
  { key: "authPassword", flag: "auth-password", env: "DIEGO_AUTH_PASSWORD", kind: "string", default: "", help: "API Basic auth password (prefer the environment variable: flags show in ps)", for: ["up", "receptor"] },
  { key: "authTokenFile", flag: "auth-token-file", env: "DIEGO_AUTH_TOKEN_FILE", kind: "string", default: "", help: "file of API bearer tokens, one a line (# comments); re-read on SIGHUP", for: ["up", "receptor"] },
  { key: "corsOrigins", flag: "cors-origins", env: "DIEGO_CORS_ORIGINS", kind: "list", default: "", help: "origins allowed cross-origin API calls (comma-separated, * for any); empty: CORS off", for: ["up", "receptor"] },
  { key: "headersTimeout", flag: "headers-timeout", env: "DIEGO_HEADERS_TIMEOUT", kind: "duration", default: "60s", min: 1, help: "an API connection that has not sent a request's headers in this long is closed (HTTP/2: one with no request open)", for: ["up", "receptor"] },
  { key: "requestTimeout", flag: "request-timeout", env: "DIEGO_REQUEST_TIMEOUT", kind: "duration", default: "5m", min: 1, help: "a request not wholly received in this long gets 408 and its connection (HTTP/2: stream) is closed", for: ["up", "receptor"] },
  { key: "dataDir", flag: "data-dir", env: "DIEGO_DATA_DIR", kind: "string", default: ".diego", help: "where the embedded nats-server keeps JetStream data and cells keep containers", for: ["up", "cell"] },
  { key: "nats", flag: "nats", env: "DIEGO_NATS_URL", kind: "string", default: "", help: "NATS URL(s), comma-separated; empty for `up` means start an embedded nats-server", for: ALL },
  { key: "natsCreds", flag: "nats-creds", env: "DIEGO_NATS_CREDS", kind: "string", default: "", help: "NATS credentials file: a .creds file (user JWT and seed), an nkey user seed, or one line user:password; `up` makes its own for the embedded nats-server", for: ALL },
  { key: "natsTlsCa", flag: "nats-tls-ca", env: "DIEGO_NATS_TLS_CA", kind: "string", default: "", help: "PEM CA file that signed the NATS server's certificate (TLS to NATS)", for: ALL },
  { key: "natsTlsCert", flag: "nats-tls-cert", env: "DIEGO_NATS_TLS_CERT", kind: "string", default: "", help: "PEM client certificate file for NATS, when its servers verify clients", for: ALL },
  { key: "natsTlsKey", flag: "nats-tls-key", env: "DIEGO_NATS_TLS_KEY", kind: "string", default: "", help: "PEM private key file for --nats-tls-cert", for: ALL },
  { key: "natsPort", flag: "nats-port", env: "DIEGO_NATS_PORT", kind: "int", default: "4222", max: 65535, help: "client port of the embedded nats-server (0 = any free port)", for: ["up"] },
  { key: "logLevel", flag: "log-level", env: "DIEGO_LOG_LEVEL", kind: "string", default: "info", choices: ["trace", "debug", "info", "warn", "error", "fatal", "silent"], help: "pino log level (trace, debug, info, warn, error, fatal, silent)", for: ALL },
  { key: "logFormat", flag: "log-format", env: "DIEGO_LOG_FORMAT", kind: "string", default: "auto", choices: ["auto", "json", "text"], help: "logs on stderr as JSON lines (json), one readable line each (text), or text on a terminal and JSON otherwise (auto)", for: ALL },
  { key: "cellTtl", flag: "cell-ttl", env: "DIEGO_CELL_TTL", kind: "duration", default: "10s", min: 1, help: "a cell whose heartbeat is older than this is gone", for: ALL },
  { key: "cellId", flag: "cell-id", env: "DIEGO_CELL_ID", kind: "string", default: "", help: "unique id of this cell (letters, digits, - and _); default cell-<hostname>", for: CELL },
  { key: "stacks", flag: "stacks", env: "DIEGO_STACKS", kind: "list", default: "lucid64", help: "stacks this cell serves (comma-separated)", for: CELL },
  { key: "rootfs", flag: "rootfs", env: "DIEGO_ROOTFS", kind: "list", default: "", help: "preloaded root filesystem per stack, `stack=/dir` (comma-separated); default: the built-in busybox root filesystem", for: CELL },
  { key: "runtime", flag: "runtime", env: "DIEGO_RUNTIME", kind: "string", default: "runc", choices: ["runc", "crun"], help: "OCI runtime: runc or crun", for: CELL },
  { key: "memoryMb", flag: "memory-mb", env: "DIEGO_MEMORY_MB", kind: "int", default: "0", help: "memory the cell offers (0 = the machine's total)", for: CELL },
  { key: "diskMb", flag: "disk-mb", env: "DIEGO_DISK_MB", kind: "int", default: "0", help: "disk the cell offers (0 = free space of the data dir)", for: CELL },
  { key: "containers", flag: "containers", env: "DIEGO_CONTAINERS", kind: "int", default: "256", min: 1, help: "container slots the cell offers", for: CELL },
  { key: "zone", flag: "zone", env: "DIEGO_ZONE", kind: "string", default: "z1", help: "availability zone of the cell", for: CELL },
  { key: "dockerRegistry", flag: "docker-registry", env: "DIEGO_DOCKER_REGISTRY", kind: "string", default: "registry-1.docker.io", help: "registry for docker:///org/image root filesystems", for: CELL },
  { key: "insecureRegistries", flag: "insecure-registries", env: "DIEGO_INSECURE_REGISTRIES", kind: "list", default: "", help: "registries reached over plain http (host:port, comma-separated); loopback always is", for: CELL },
  { key: "pidsLimit", flag: "pids-limit", env: "DIEGO_PIDS_LIMIT", kind: "int", default: "1024", min: 1, help: "max processes per container", for: CELL },
  { key: "networkCidr", flag: "network-cidr", env: "DIEGO_NETWORK_CIDR", kind: "string", default: "", help: "IPv4 CIDR of the cell's container network (a /12 to /29); default a free /22 of 10.128.0.0/9 picked from the cell's work dir. A range that clashes with the machine's routes is refused", for: CELL },
  { key: "dnsServers", flag: "dns-servers", env: "DIEGO_DNS_SERVERS", kind: "list", default: "", help: "resolvers named in each container's /etc/resolv.conf (comma-separated); default the machine's (loopback ones left out). Reaching them still needs an egress rule", for: CELL },
  { key: "hostPorts", flag: "host-ports", env: "DIEGO_HOST_PORTS", kind: "string", default: "61000-61999", help: "host ports the cell hands to published container ports, FIRST-LAST", for: CELL },
  { key: "cellAddress", flag: "cell-address", env: "DIEGO_CELL_ADDRESS", kind: "string", default: "", help: "IPv4 address published container ports are reached at; default the address of the default route's interface", for: CELL },
  { key: "auctionInterval", flag: "auction-interval", env: "DIEGO_AUCTION_INTERVAL", kind: "duration", default: "100ms", min: 1, help: "longest wait before a batch of pending tasks is auctioned", for: ["up", "auctioneer"] },
  { key: "placementRetries", flag: "placement-retries", env: "DIEGO_PLACEMENT_RETRIES", kind: "int", default: "3", help: "auctions a task may fail to be placed in before it fails", for: ["up", "auctioneer"] },
  { key: "lockTtl", flag: "lock-ttl", env: "DIEGO_LOCK_TTL", kind: "duration", default: "6s", min: 1, help: "leader lock expiry: how soon a standby auctioneer or converger takes over", for: ["up", "auctioneer", "converger"] },
  { key: "convergeInterval", flag: "converge-interval", env: "DIEGO_CONVERGE_INTERVAL", kind: "duration", default: "30s", min: 1, help: "how often the converger checks every task", for: ["up", "converger"] },
  { key: "kickInterval", flag: "kick-interval", env: "DIEGO_KICK_INTERVAL", kind: "duration", default: "30s", min: 1, help: "a task untouched this long is re-auctioned or its callback retried", for: ["up", "converger"] },
  { key: "pendingTimeout", flag: "pending-timeout", env: "DIEGO_PENDING_TIMEOUT", kind: "duration", default: "30m", min: 1, help: "PENDING longer than this fails: not started within time limit", for: ["up", "converger"] },
  { key: "claimTimeout", flag: "claim-timeout", env: "DIEGO_CLAIM_TIMEOUT", kind: "duration", default: "5m", min: 1, help: "CLAIMED but not RUNNING longer than this fails: not claimed within time limit", for: ["up", "converger"] },
  { key: "completedTtl", flag: "completed-ttl", env: "DIEGO_COMPLETED_TTL", kind: "duration", default: "2m", min: 1, help: "completed tasks nobody resolves are removed after this", for: ["up", "converger", "dispatcher"] },
  { key: "callbackTimeout", flag: "callback-timeout", env: "DIEGO_CALLBACK_TIMEOUT", kind: "duration", default: "10s", min: 1, help: "per-call timeout of completion callbacks", for: ["up", "dispatcher"] },
  { key: "callbackRetryInterval", flag: "callback-retry-interval", env: "DIEGO_CALLBACK_RETRY_INTERVAL", kind: "duration", default: "30s", min: 1, help: "wait before another round of a failing callback", for: ["up", "dispatcher", "converger"] },
  { key: "replicas", flag: "replicas", env: "DIEGO_REPLICAS", kind: "int", default: "1", min: 1, max: 5, help: "copies of every bucket on a NATS cluster; given, an existing bucket with another count is updated (or the start fails saying so)", for: ["receptor", "auctioneer", "converger", "dispatcher", "cell"] },
  { key: "natsWait", flag: "nats-wait", env: "DIEGO_NATS_WAIT", kind: "duration", default: "0", help: "how long a process starting while NATS is unreachable waits for it, retrying, before it gives up (0 = for ever)", for: ALL },
  { key: "metricsListen", flag: "metrics-listen", env: "DIEGO_METRICS_LISTEN", kind: "string", default: "", help: "HOST:PORT serving Prometheus metrics on /metrics (empty: off; the receptor and `up` serve them on the API's /metrics)", for: ["auctioneer", "converger", "dispatcher", "cell"] },
  { key: "callbackConcurrency", flag: "callback-concurrency", env: "DIEGO_CALLBACK_CONCURRENCY", kind: "int", default: "100", min: 1, help: "callbacks in flight at once per dispatcher", for: ["up", "dispatcher"] },
];

export type Settings = Record<string, string | number | string[]>;

export class InvalidSettingError extends Error {
  override readonly name = "InvalidSettingError";
}

export function parseSetting(def: SettingDef, raw: string): string | number | string[] {
  if (def.choices && !def.choices.includes(raw)) {
    throw new InvalidSettingError(`--${def.flag} must be one of ${def.choices.join(", ")}; got '${raw}'`);
  }
  switch (def.kind) {
    case "string":
      return raw;
    case "list":
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "int": {
      if (!/^[0-9]+$/.test(raw.trim())) throw new InvalidSettingError(`--${def.flag} must be a whole number, got '${raw}'`);
      if (def.max !== undefined && Number(raw) > def.max) throw new InvalidSettingError(`--${def.flag} must be at most ${def.max}, got ${raw}`);
      if (def.min !== undefined && Number(raw) < def.min) throw new InvalidSettingError(`--${def.flag} must be at least ${def.min}, got ${raw}`);
      return Number(raw);
    }
    case "duration": {
      let ms: number;
      try {
        ms = parseDuration(raw);
      } catch (err) {
        throw new InvalidSettingError(`--${def.flag}: ${(err as Error).message}`);
      }
      if (def.min !== undefined && ms < def.min) throw new InvalidSettingError(`--${def.flag} must be at least ${formatDuration(def.min)}, got '${raw}'`);
      return ms;
    }
  }
}
