import { durationSetting, intSetting, stringSetting } from "../settings/index.js";

// How every process meets NATS, and the embedded nats-server of `diego up`.

export const natsConnectionSettings = {
  nats: stringSetting({ flag: "nats", env: "DIEGO_NATS_URL", default: "", help: "NATS URL(s), comma-separated; empty for `up` means start an embedded nats-server" }),
  natsCreds: stringSetting({
    flag: "nats-creds",
    env: "DIEGO_NATS_CREDS",
    default: "",
    help: "NATS credentials file: a .creds file (user JWT and seed), an nkey user seed, or one line user:password; `up` makes its own for the embedded nats-server",
    doc: "NATS credentials file: a `.creds` file (user JWT and seed), an nkey user seed, or one line `user:password` (`user:password@` in `--nats` works too). `up` makes its own for the nats-server it starts (`<data-dir>/nats/credentials`, 0600): see [docs/security.md](docs/security.md#nats-access)",
  }),
  natsTlsCa: stringSetting({ flag: "nats-tls-ca", env: "DIEGO_NATS_TLS_CA", default: "", help: "PEM CA file that signed the NATS servers' certificates (TLS to NATS)" }),
  natsTlsCert: stringSetting({ flag: "nats-tls-cert", env: "DIEGO_NATS_TLS_CERT", default: "", help: "PEM client certificate file for NATS servers that verify clients" }),
  natsTlsKey: stringSetting({ flag: "nats-tls-key", env: "DIEGO_NATS_TLS_KEY", default: "", help: "PEM private key file for --nats-tls-cert", doc: "PEM private key file for `--nats-tls-cert`" }),
  natsWait: durationSetting({
    flag: "nats-wait",
    env: "DIEGO_NATS_WAIT",
    default: "0",
    help: "how long a process starting while NATS is unreachable waits for it, retrying, before it gives up (0 = for ever)",
    doc: "how long a process that starts while NATS is unreachable waits for it, retrying with a log line, before it gives up (0 = for ever, so a fleet starts in any order)",
  }),
} as const;

/** Bucket replicas; `up` is one machine and keeps 1. */
export const replicaSettings = {
  replicas: intSetting({
    flag: "replicas",
    env: "DIEGO_REPLICAS",
    default: 1,
    min: 1,
    max: 5,
    help: "copies of every bucket on a NATS cluster; given, an existing bucket with another count is updated (or the start fails saying so)",
    doc: "copies of every bucket on a NATS cluster (1-5); given, an existing bucket with another count is updated to it, or the start fails naming both counts; `up` keeps 1",
  }),
} as const;

export const leaderLockSettings = {
  lockTtl: durationSetting({ flag: "lock-ttl", env: "DIEGO_LOCK_TTL", default: "6s", min: 1, help: "leader lock expiry: how soon a standby auctioneer or converger takes over" }),
} as const;

export const embeddedNatsSettings = {
  natsPort: intSetting({
    flag: "nats-port",
    env: "DIEGO_NATS_PORT",
    default: 4222,
    max: 65535,
    help: "client port of the embedded nats-server (0 = any free port)",
    doc: "client port of the embedded nats-server (0 = any free port). If the default is taken (say by Debian's nats-server service), `up` takes a free one and prints it; a port you set is used as given. The nats-server child stops with `up`, even when `up` is killed with SIGKILL (util-linux's `setpriv --pdeathsig`); one left running on the data dir anyway is stopped first",
  }),
} as const;
