import { createHash } from "node:crypto";
import { nkeys } from "@nats-io/transport-node";

// Just enough of NATS's decentralized (JWT) auth to run nats-server in operator mode in a test:
// an operator, one account with JetStream, and a user of it as a `.creds` file. The claim layout
// follows the NATS JWT v2 documentation.

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64 = (data: string | Uint8Array): string => Buffer.from(data).toString("base64url");

function signJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } };
  claims.jti = createHash("sha256").update(JSON.stringify(claims)).digest("hex").slice(0, 52).toUpperCase();
  const signed = `${b64(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }))}.${b64(JSON.stringify(claims))}`;
  return `${signed}.${b64(issuer.sign(new TextEncoder().encode(signed)))}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export interface OperatorSetup {
  /** nats-server configuration for operator mode with the accounts preloaded. */
  config: string;
  /** A `.creds` file's text for a user of the account. */
  userCreds(name: string): string;
}

export function operatorSetup(): OperatorSetup {
  const operator = nkeys.createOperator();
  const system = nkeys.createAccount();
  const account = nkeys.createAccount();
  const operatorJwt = signJwt(operator, operator.getPublicKey(), "test-operator", { type: "operator", system_account: system.getPublicKey() });
  const accountJwt = (kp: KeyPair, name: string, jetstream: boolean): string =>
    signJwt(operator, kp.getPublicKey(), name, {
      type: "account",
      limits: { ...UNLIMITED, ...(jetstream ? { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } : {}) },
    });
  const config = [
    `operator: "${operatorJwt}"`,
    `system_account: "${system.getPublicKey()}"`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${system.getPublicKey()}: "${accountJwt(system, "SYS", false)}"`,
    `  ${account.getPublicKey()}: "${accountJwt(account, "diego", true)}"`,
    "}",
  ].join("\n");
  return {
    config,
    userCreds(name) {
      const user = nkeys.createUser();
      const jwt = signJwt(account, user.getPublicKey(), name, { type: "user", pub: {}, sub: {}, subs: -1, data: -1, payload: -1 });
      const seed = new TextDecoder().decode(user.getSeed());
      return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
    },
  };
}
