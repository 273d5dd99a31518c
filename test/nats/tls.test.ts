import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsRefusedError } from "../../src/nats/connect-options.js";
import { connectNats, startEmbeddedNats, type EmbeddedNats } from "../../src/nats/index.js";
import { DIEGO_BIN, spawnDiego } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid } from "../receptor/rest-client.js";

// TLS to NATS with client certificates: a throw-away CA signs the server's and a client's
// certificate; nats-server verifies clients and also wants a password.

const run = promisify(execFile);
let dir = "";
let nats: EmbeddedNats;
let plain: EmbeddedNats;
let misnamed: EmbeddedNats;
const files = (name: string): string => path.join(dir, name);

/** A key and a certificate signed by the test CA, with these extensions. */
async function issue(name: string, subject: string, extensions: string): Promise<void> {
  await writeFile(files(`${name}.ext`), extensions);
  await run("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", files(`${name}.key`), "-out", files(`${name}.csr`), "-subj", subject]);
  await run("openssl", ["x509", "-req", "-in", files(`${name}.csr`), "-CA", files("ca.pem"), "-CAkey", files("ca.key"), "-CAcreateserial", "-out", files(`${name}.pem`), "-days", "1", "-extfile", files(`${name}.ext`)]);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "diego-nats-tls-"));
  await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", files("ca.key"), "-out", files("ca.pem"), "-days", "1", "-subj", "/CN=diego test CA"]);
  await issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  await issue("client", "/CN=diego-client", "extendedKeyUsage=clientAuth\n");
  await issue("misnamed", "/CN=nats.example", "subjectAltName=DNS:nats.example,IP:10.0.0.1\nextendedKeyUsage=serverAuth\n");
  await writeFile(files("creds"), "fleet:fleet-password\n", { mode: 0o600 });
  await writeFile(files("stranger-ca.pem"), (await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", files("stranger-ca.key"), "-days", "1", "-subj", "/CN=stranger"])).stdout);
  nats = await startEmbeddedNats({
    dataDir: files("nats"),
    port: 0,
    auth: { user: "fleet", password: "fleet-password" },
    config: `tls {\n  cert_file: "${files("server.pem")}"\n  key_file: "${files("server.key")}"\n  ca_file: "${files("ca.pem")}"\n  verify: true\n}`,
  });
  misnamed = await startEmbeddedNats({
    dataDir: files("misnamed-nats"),
    port: 0,
    config: `tls {\n  cert_file: "${files("misnamed.pem")}"\n  key_file: "${files("misnamed.key")}"\n}`,
  });
  plain = await startEmbeddedNats({ dataDir: files("plain"), port: 0, auth: { user: "fleet", password: "fleet-password" } });
}, 60_000);

afterAll(async () => {
  await nats?.stop();
  await plain?.stop();
  await misnamed?.stop();
  await rm(dir, { recursive: true, force: true });
});

const tlsArgs = (...which: Array<"ca" | "cert">): string[] => [
  ...(which.includes("ca") ? ["--nats-tls-ca", files("ca.pem")] : []),
  ...(which.includes("cert") ? ["--nats-tls-cert", files("client.pem"), "--nats-tls-key", files("client.key")] : []),
];

const failingDiego = (args: string[]): Promise<{ code: number; stderr: string } | undefined> =>
  run(process.execPath, [DIEGO_BIN, ...args], { timeout: 30_000, env: { ...process.env, DIEGO_LOG_LEVEL: "warn" } }).then(
    () => undefined,
    (err: { code: number; stderr: string }) => err,
  );

describe("TLS to NATS", () => {
  it("a process given the CA, a client certificate and credentials connects and works", async () => {
    const receptor = await spawnDiego(["receptor", "--nats", nats.url, "--nats-creds", files("creds"), ...tlsArgs("ca", "cert"), "--listen", "127.0.0.1:0"]);
    try {
      const api = createRestClient(`http://${/ready on (\S+)/.exec(receptor.readyLine)![1]}`);
      const guid = uniqueGuid("tls");
      expect((await api.createTask({ task_guid: guid, domain: "tls", stack: "lucid64", action: { run: { path: "/bin/true" } } })).status).toBe(201);
      expect((await api.getTask(guid)).json()).toMatchObject({ task_guid: guid, state: "PENDING" });
    } finally {
      await receptor.kill("SIGTERM");
    }
  });

  it("fails in one line without the CA, naming the flag", async () => {
    const failed = await failingDiego(["receptor", "--nats", nats.url, "--nats-creds", files("creds"), ...tlsArgs("cert"), "--listen", "127.0.0.1:0"]);
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(`diego receptor: NATS at ${nats.url}: TLS: unable to verify the first certificate (give the server's CA with --nats-tls-ca)\n`);
  });

  it("refuses a server certificate from another CA", async () => {
    const auth = { credsFile: files("creds"), tls: { caFile: files("stranger-ca.pem"), certFile: files("client.pem"), keyFile: files("client.key") } };
    await expect(connectNats({ url: nats.url, name: "tls-stranger-ca", auth })).rejects.toThrow(
      `NATS at ${nats.url}: TLS: unable to verify the first certificate (check --nats-tls-ca ${files("stranger-ca.pem")})`,
    );
  });

  it("refuses a certificate from the right CA that names another server", async () => {
    await expect(connectNats({ url: misnamed.url, name: "tls-misnamed", auth: { tls: { caFile: files("ca.pem") } } })).rejects.toThrow(
      `NATS at ${misnamed.url}: TLS: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: 10.0.0.1 (the server's certificate must name the host in --nats)`,
    );
  });

  it("names the client certificate when the server wants one and none was given", async () => {
    const refused = connectNats({ url: nats.url, name: "tls-no-cert", auth: { credsFile: files("creds"), tls: { caFile: files("ca.pem") } } });
    await expect(refused).rejects.toThrow(NatsRefusedError);
    await expect(refused).rejects.toThrow(
      `NATS at ${nats.url}: no answer after the TLS handshake: does the server require a client certificate? (--nats-tls-cert, --nats-tls-key)`,
    );
  });

  it("asks TLS of a server that does not offer it", async () => {
    await expect(connectNats({ url: plain.url, name: "tls-to-plain", auth: { credsFile: files("creds"), tls: { caFile: files("ca.pem") } } })).rejects.toThrow(
      `NATS at ${plain.url}: TLS: the server does not offer TLS, which --nats-tls-* ask for`,
    );
  });
});
