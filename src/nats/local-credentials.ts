import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { NatsCredentialsError, parseNatsCredentials } from "./connect-options.js";

// `diego up`'s own NATS credentials: a user and a random password in its data dir, made on the
// first start and reused after, so that only processes that can read that file reach its NATS.

export interface LocalCredentials {
  /** The `user:password` file; any diego process takes it as --nats-creds. */
  file: string;
  user: string;
  password: string;
}

export const LOCAL_CREDENTIALS_FILE = "credentials";
const LOCAL_USER = "diego";

/** Reads `dir`/credentials, or makes it (0600, in `dir` made 0700). */
export async function ensureLocalCredentials(dir: string): Promise<LocalCredentials> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not apply to a directory that was already there.
  await chmod(dir, 0o700);
  const file = path.join(dir, LOCAL_CREDENTIALS_FILE);
  const fresh = `${LOCAL_USER}:${randomBytes(32).toString("base64url")}\n`;
  // "wx": never overwrite credentials a running fleet process may hold.
  await writeFile(file, fresh, { mode: 0o600, flag: "wx" }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  await chmod(file, 0o600);
  const creds = parseNatsCredentials(await readFile(file, "utf8"), file);
  if (creds.kind !== "password") throw new NatsCredentialsError(`${file} must hold one line user:password (diego up makes it; remove it to get a new one)`);
  return { file, user: creds.user, password: creds.password };
}
