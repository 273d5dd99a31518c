import { access, constants } from "node:fs/promises";
import { NatsCredentialsError, readNatsCredentials, type NatsAuth, type natsConnectionSettings } from "../nats/index.js";
import type { SettingsOf } from "../settings/index.js";
import { InvalidSettingError } from "./settings.js";

// --nats-creds and --nats-tls-*: checked when a command starts, so that a missing or malformed
// file is one line naming the flag rather than a failure at the first connect.

type NatsAuthSettings = Pick<SettingsOf<typeof natsConnectionSettings>, "natsCreds" | "natsTlsCa" | "natsTlsCert" | "natsTlsKey">;

const TLS_FLAGS = [
  ["natsTlsCa", "nats-tls-ca", "caFile"],
  ["natsTlsCert", "nats-tls-cert", "certFile"],
  ["natsTlsKey", "nats-tls-key", "keyFile"],
] as const;

async function readable(flag: string, file: string): Promise<void> {
  await access(file, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidSettingError(`--${flag}: cannot read ${file} (${err.code ?? err.message})`);
  });
}

/** True when any NATS credential or TLS setting is given. */
export function natsAuthGiven(s: NatsAuthSettings): boolean {
  return Boolean(s.natsCreds) || TLS_FLAGS.some(([key]) => Boolean(s[key]));
}

export async function natsAuthFrom(s: NatsAuthSettings): Promise<NatsAuth> {
  const auth: NatsAuth = {};
  const credsFile = s.natsCreds;
  if (credsFile) {
    await readNatsCredentials(credsFile).catch((err: unknown) => {
      throw err instanceof NatsCredentialsError ? new InvalidSettingError(`--nats-creds: ${err.message}`) : err;
    });
    auth.credsFile = credsFile;
  }
  if (Boolean(s.natsTlsCert) !== Boolean(s.natsTlsKey)) throw new InvalidSettingError("--nats-tls-cert and --nats-tls-key go together");
  for (const [key, flag, field] of TLS_FLAGS) {
    const file = s[key];
    if (!file) continue;
    await readable(flag, file);
    auth.tls = { ...auth.tls, [field]: file };
  }
  return auth;
}
