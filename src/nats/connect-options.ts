import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { checkServerIdentity as tlsCheckServerIdentity } from "node:tls";
import {
  AuthorizationError,
  TimeoutError,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";

// How every diego process reaches NATS: which servers, with which credentials, over which TLS.
// One place, so that `diego up`, each fleet process and the tests connect the same way.

/** PEM files for TLS to NATS. A client certificate is optional (cert and key go together). */
export interface NatsTlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** Credentials and TLS beyond what the URL holds (`nats://user:password@host:port` also works). */
export interface NatsAuth {
  /** A NATS `.creds` file (user JWT + nkey seed), an nkey seed file, or a `user:password` file. */
  credsFile?: string;
  tls?: NatsTlsFiles;
}

/** The credentials file cannot be read or is in none of the known formats. */
export class NatsCredentialsError extends Error {
  override readonly name = "NatsCredentialsError";
}

export type NatsCredentials =
  | { kind: "creds"; bytes: Uint8Array }
  | { kind: "nkey"; seed: Uint8Array }
  | { kind: "password"; user: string; password: string };

const JWT_BEGIN = "-----BEGIN NATS USER JWT-----";
/** An nkey user seed: "SU" then base32. */
const NKEY_USER_SEED = /^SU[A-Z2-7]{56}$/;

/** Which kind of credentials file `text` is; see NatsAuth.credsFile. */
export function parseNatsCredentials(text: string, file: string): NatsCredentials {
  if (text.includes(JWT_BEGIN)) return { kind: "creds", bytes: new TextEncoder().encode(text) };
  const line = text.trim();
  if (NKEY_USER_SEED.test(line)) return { kind: "nkey", seed: new TextEncoder().encode(line) };
  const colon = line.indexOf(":");
  if (colon > 0 && !line.includes("\n")) return { kind: "password", user: line.slice(0, colon), password: line.slice(colon + 1) };
  throw new NatsCredentialsError(
    `${file} is not a NATS credentials file: expected a .creds file (user JWT and seed), an nkey user seed (SU...), or one line user:password`,
  );
}

export async function readNatsCredentials(file: string): Promise<NatsCredentials> {
  const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new NatsCredentialsError(`cannot read the NATS credentials file ${file}: ${err.code ?? err.message}`);
  });
  return parseNatsCredentials(text, file);
}

function authenticatorFor(c: NatsCredentials): Authenticator {
  switch (c.kind) {
    case "creds":
      return credsAuthenticator(c.bytes);
    case "nkey":
      return nkeyAuthenticator(c.seed);
    case "password":
      return usernamePasswordAuthenticator(c.user, c.password);
  }
}

/** The URLs without their userinfo, and that userinfo (the first given), decoded. */
function splitUserinfo(url: string): { servers: string[]; user?: string; password?: string } {
  let user: string | undefined;
  let password: string | undefined;
  const servers = url.split(",").map((raw) => {
    const s = raw.trim();
    const m = /^([a-z]+:\/\/)?([^@/]*)@(.*)$/i.exec(s);
    if (!m) return s;
    if (user === undefined) {
      const info = m[2]!;
      const colon = info.indexOf(":");
      user = decodeURIComponent(colon < 0 ? info : info.slice(0, colon));
      password = colon < 0 ? undefined : decodeURIComponent(info.slice(colon + 1));
    }
    return (m[1] ?? "") + m[3]!;
  });
  return { servers, user, password };
}

/** `url` with any password (or token) replaced, for logs, errors and ready lines. */
export function redactNatsUrl(url: string): string {
  return url
    .split(",")
    .map((part) =>
      part.replace(/^(\s*(?:[a-z]+:\/\/)?)([^@/]*)@/i, (_m, head: string, info: string) => {
        const colon = info.indexOf(":");
        return `${head}${colon < 0 ? "***" : `${info.slice(0, colon)}:***`}@`;
      }),
    )
    .join(",");
}

/**
 * The part of nats.js's connect options that says where and as whom: servers, credentials (the
 * file wins over the URL's userinfo), TLS. Reads the credentials file.
 */
export async function natsConnectOptions(url: string, auth: NatsAuth = {}): Promise<Partial<NodeConnectionOptions>> {
  const { servers, user, password } = splitUserinfo(url);
  const opts: Partial<NodeConnectionOptions> = { servers };
  if (auth.credsFile) opts.authenticator = authenticatorFor(await readNatsCredentials(auth.credsFile));
  else if (user !== undefined) opts.authenticator = password === undefined ? tokenAuthenticator(user) : usernamePasswordAuthenticator(user, password);
  const tls = auth.tls ?? {};
  if (tls.caFile || tls.certFile || tls.keyFile) {
    opts.tls = {
      ...(tls.caFile ? { caFile: tls.caFile } : {}),
      ...(tls.certFile ? { certFile: tls.certFile } : {}),
      ...(tls.keyFile ? { keyFile: tls.keyFile } : {}),
      // nats.js passes its tls options on to node:tls.
      checkServerIdentity: identityCheck(servers),
    } as NonNullable<NodeConnectionOptions["tls"]>;
  }
  return opts;
}

/**
 * nats.js sends no server name for a server given by IP address, so node:tls checks the
 * certificate against "localhost". Such a certificate may instead name one of the IP addresses
 * given.
 */
function identityCheck(servers: string[]): typeof tlsCheckServerIdentity {
  const ips = servers.map((s) => /^(?:[a-z]+:\/\/)?\[?([^\]/]*?)\]?(?::\d+)?$/i.exec(s)?.[1] ?? "").filter((h) => isIP(h) !== 0);
  return (host, cert) => {
    const err = tlsCheckServerIdentity(host, cert);
    if (!err || host !== "localhost") return err;
    if (ips.length === 0) return err;
    const byIp = ips.map((ip) => tlsCheckServerIdentity(ip, cert));
    return byIp.includes(undefined) ? undefined : byIp[0];
  };
}

/** NATS answered, but refused us: wrong or missing credentials, or TLS that does not check out. */
export class NatsRefusedError extends Error {
  override readonly name = "NatsRefusedError";
}

/** OpenSSL's verification failures, as Node reports them in `code`. */
const TLS_VERIFY_CODES = /CERT|SELF_SIGNED|UNABLE_TO|LEAF|ERR_SSL|ERR_TLS|ISSUER/;

/**
 * The refusal `err` (from connect) stands for, as one line naming the problem and the setting to
 * check, or undefined when NATS was just not reachable (worth waiting for; a refusal is not).
 */
export function natsRefusal(url: string, auth: NatsAuth, err: unknown): NatsRefusedError | undefined {
  const at = `NATS at ${redactNatsUrl(url)}`;
  const e = err as { message?: string; code?: string } | undefined;
  const message = e?.message ?? String(err);
  if (err instanceof AuthorizationError || /authorization violation/i.test(message)) {
    const hint = auth.credsFile ? `the credentials in ${auth.credsFile} were refused` : "give credentials with --nats-creds or user:password in --nats";
    return new NatsRefusedError(`${at}: authorization violation (${hint})`);
  }
  if (e?.code === "ERR_TLS_CERT_ALTNAME_INVALID") return new NatsRefusedError(`${at}: TLS: ${message} (the server's certificate must name the host in --nats)`);
  if (typeof e?.code === "string" && TLS_VERIFY_CODES.test(e.code)) {
    const hint = auth.tls?.caFile ? `check --nats-tls-ca ${auth.tls.caFile}` : "give the server's CA with --nats-tls-ca";
    return new NatsRefusedError(`${at}: TLS: ${message} (${hint})`);
  }
  if (/server does not support 'tls'/.test(message)) return new NatsRefusedError(`${at}: TLS: the server does not offer TLS, which --nats-tls-* ask for`);
  // A server that verifies client certificates closes the connection right after the handshake,
  // which nats.js reports only as a timeout.
  if (err instanceof TimeoutError && auth.tls && !auth.tls.certFile) {
    return new NatsRefusedError(`${at}: no answer after the TLS handshake: does the server require a client certificate? (--nats-tls-cert, --nats-tls-key)`);
  }
  return undefined;
}
