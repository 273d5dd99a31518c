import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";

// Who may call the API: HTTP Basic credentials (as the 2015 receptor's --username/--password)
// and bearer tokens read from a file, one per line. Every comparison is between SHA-256 digests
// of equal length with timingSafeEqual, and every candidate is checked, so the time taken says
// nothing about how much of a secret a guess got right, nor which one.

export interface AuthOptions {
  /** Basic auth: both or neither. */
  user?: string;
  password?: string;
  /** A file of bearer tokens, one a line (blank lines and lines starting with # are skipped). */
  tokenFile?: string;
}

export interface ApiAuth {
  /** False when no credentials are configured: every request is let in. */
  readonly enabled: boolean;
  /** The `WWW-Authenticate` challenge of a 401. */
  readonly challenge: string;
  /** Whether an `authorization` header value carries valid credentials. */
  check(authorization: string | undefined): boolean;
  /** Reads the token file again (SIGHUP); throws, keeping the old tokens, if it cannot. */
  reload(): Promise<number>;
}

export class AuthConfigError extends Error {
  override readonly name = "AuthConfigError";
}

/** Paths that answer without credentials: health and metrics, for probes and scrapers. */
export const OPEN_PATHS: ReadonlySet<string> = new Set([
  "/healthz",
  "/readyz",
  "/metrics",
  "/grpc.health.v1.Health/Check",
  "/grpc.health.v1.Health/Watch",
]);

export const isOpenPath = (url: string | undefined): boolean => OPEN_PATHS.has((url ?? "/").split("?")[0]!);

const digest = (s: string | Buffer): Buffer => createHash("sha256").update(s).digest();

/** True when `candidate` equals one of `allowed`, in time independent of which or how close. */
function matchesAny(candidate: Buffer, allowed: readonly Buffer[]): boolean {
  let found = false;
  for (const a of allowed) found = timingSafeEqual(candidate, a) || found;
  return found;
}

/** One token a line; blank lines and `#` comments skipped. */
export function parseTokens(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

export async function createApiAuth(opts: AuthOptions): Promise<ApiAuth> {
  const user = opts.user ?? "";
  const password = opts.password ?? "";
  if ((user === "") !== (password === "")) throw new AuthConfigError("--auth-user and --auth-password go together");
  if (user.includes(":")) throw new AuthConfigError("--auth-user cannot contain ':' (Basic auth separates user and password with it)");
  const basic = user ? [digest(`${user}:${password}`)] : [];
  let tokens: Buffer[] = [];
  const load = async (): Promise<number> => {
    if (!opts.tokenFile) return 0;
    let text: string;
    try {
      text = await readFile(opts.tokenFile, "utf8");
    } catch (err) {
      throw new AuthConfigError(`--auth-token-file ${opts.tokenFile}: ${(err as Error).message}`);
    }
    const list = parseTokens(text);
    if (list.length === 0) throw new AuthConfigError(`--auth-token-file ${opts.tokenFile} holds no token`);
    tokens = list.map(digest);
    return tokens.length;
  };
  await load();
  const enabled = basic.length > 0 || Boolean(opts.tokenFile);
  return {
    enabled,
    challenge: basic.length > 0 ? 'Basic realm="diego", charset="UTF-8", Bearer realm="diego"' : 'Bearer realm="diego"',
    check(authorization) {
      if (!enabled) return true;
      if (!authorization) return false;
      const space = authorization.indexOf(" ");
      if (space < 0) return false;
      const scheme = authorization.slice(0, space).toLowerCase();
      const value = authorization.slice(space + 1).trim();
      if (scheme === "bearer") return matchesAny(digest(value), tokens);
      if (scheme === "basic") return matchesAny(digest(Buffer.from(value, "base64")), basic);
      return false;
    },
    reload: load,
  };
}
