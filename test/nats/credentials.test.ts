import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { nkeys } from "@nats-io/transport-node";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TaskRecordSchema } from "../../src/gen/diego/v1/internal_pb.js";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { natsAuthFrom } from "../../src/cli/nats-settings.js";
import { defaultsOf } from "../../src/settings/index.js";
import { NatsRefusedError, redactNatsUrl } from "../../src/nats/connect-options.js";
import { connectNats, natsConnectionSettings, openTasksBucket, startEmbeddedNats, TASKS_BUCKET } from "../../src/nats/index.js";
import { encodeRecord } from "../../src/store/task-store.js";
import { DIEGO_BIN, spawnDiego, type DiegoProcess } from "../fixtures/receptor.js";
import { createRestClient, uniqueGuid } from "../receptor/rest-client.js";
import { operatorSetup } from "./nats-jwt.js";
import { rawNatsPublish, rawNatsSession } from "./raw-nats.js";

// `diego up` makes credentials in its data dir and its nats-server admits nobody else: before,
// any local process could CONNECT {} and write task records that the API served as its own.

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const tempDir = async (prefix: string): Promise<string> => {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
};

async function diego(args: string[]): Promise<DiegoProcess> {
  const p = await spawnDiego(args);
  // SIGTERM: `diego up` then stops its nats-server child, which a SIGKILL would orphan.
  cleanups.push(async () => {
    const force = setTimeout(() => p.child.kill("SIGKILL"), 10_000);
    await p.kill("SIGTERM");
    clearTimeout(force);
  });
  return p;
}

/** Runs `diego <args>`, expecting it to fail at start. */
const failingDiego = (args: string[]): Promise<{ code: number; stderr: string } | undefined> =>
  promisify(execFile)(process.execPath, [DIEGO_BIN, ...args], { timeout: 30_000, env: { ...process.env, DIEGO_LOG_LEVEL: "warn" } }).then(
    () => undefined,
    (err: { code: number; stderr: string }) => err,
  );

/** A valid record of a COMPLETED task, as an attacker would write it straight into the bucket. */
function forgedRecord(guid: string): Uint8Array {
  return encodeRecord(
    create(TaskRecordSchema, {
      task: { taskGuid: guid, domain: "forged", stack: "lucid64", state: TaskState.COMPLETED, result: "forged result", createdAt: 1n },
      updatedAt: 1n,
      firstCompletedAt: 1n,
    }),
  );
}

const mode = async (p: string): Promise<string> => ((await stat(p)).mode & 0o777).toString(8);

describe("diego up's NATS", () => {
  it("admits only holders of the generated credentials: a raw CONNECT and a forged task record are refused, processes given the file work", async () => {
    const dataDir = await tempDir("diego-up-creds-");
    const up = await diego(["up", "--data-dir", dataDir, "--nats-port", "0", "--listen", "127.0.0.1:0"]);
    const natsUrl = /(nats:\/\/127\.0\.0\.1:\d+)/.exec(up.readyLine)![1]!;
    const natsPort = Number(new URL(natsUrl).port);
    const credsFile = path.join(dataDir, "nats", "credentials");
    expect(up.readyLine).toContain(`credentials ${credsFile}`);
    expect(await mode(credsFile)).toBe("600");
    expect(await mode(path.join(dataDir, "nats"))).toBe("700");
    expect(await mode(path.join(dataDir, "nats", "nats-server.conf"))).toBe("600");
    const creds = (await readFile(credsFile, "utf8")).trim();
    const [user, password] = [creds.slice(0, creds.indexOf(":")), creds.slice(creds.indexOf(":") + 1)];
    expect(user).toBe("diego");
    expect(password.length).toBeGreaterThanOrEqual(40);
    // The password is never on nats-server's command line, which every local user can read.
    const natsPid = (await readFile(path.join(dataDir, "nats", "nats-server.pid"), "utf8")).trim();
    expect(await readFile(`/proc/${natsPid}/cmdline`, "utf8")).not.toContain(password);

    // A stranger: no credentials, then a wrong password, each with a forged COMPLETED record.
    expect(await rawNatsSession(natsPort, "CONNECT {}\r\nPING\r\n")).toBe("-ERR 'Authorization Violation'\r\n");
    const api = createRestClient(`http://${/ready on (\S+)/.exec(up.readyLine)![1]}`);
    for (const fields of [{}, { user, pass: "guessed" }, { user: "nobody", pass: password }]) {
      const guid = uniqueGuid("forged");
      const publish = rawNatsPublish(fields, [{ subject: `$KV.${TASKS_BUCKET}.${guid}`, data: forgedRecord(guid) }]);
      expect(await rawNatsSession(natsPort, publish)).toBe("-ERR 'Authorization Violation'\r\n");
      expect((await api.getTask(guid)).status).toBe(404);
    }
    // The same bytes with the credentials do land, so the refusals above are what stopped them.
    const control = uniqueGuid("forged-control");
    const withCreds = rawNatsPublish({ user, pass: password }, [{ subject: `$KV.${TASKS_BUCKET}.${control}`, data: forgedRecord(control) }]);
    expect(await rawNatsSession(natsPort, withCreds)).toBe("PONG\r\n");
    await vi.waitFor(async () => expect((await api.getTask(control)).json()).toMatchObject({ state: "COMPLETED", result: "forged result" }));

    // A real task runs end to end on up's own processes, which use the generated credentials.
    const guid = uniqueGuid("up-creds");
    const created = await api.createTask({
      task_guid: guid,
      domain: "creds",
      stack: "lucid64",
      action: { run: { path: "/bin/sh", args: ["-c", "echo ran > /tmp/out"] } },
      result_file: "/tmp/out",
    });
    expect(created.status).toBe(201);
    await vi.waitFor(async () => expect((await api.getTask(guid)).json()).toMatchObject({ state: "COMPLETED", failed: false, result: "ran\n" }), {
      timeout: 30_000,
      interval: 100,
    });

    // Another process given the file (or user:password in the URL) connects and works.
    const receptor = await diego(["receptor", "--nats", natsUrl, "--nats-creds", credsFile, "--listen", "127.0.0.1:0"]);
    const api2 = createRestClient(`http://${/ready on (\S+)/.exec(receptor.readyLine)![1]}`);
    expect((await api2.getTask(guid)).json()).toMatchObject({ task_guid: guid, state: "COMPLETED" });
    const inUrl = `nats://${user}:${password}@127.0.0.1:${natsPort}`;
    const dispatcher = await diego(["dispatcher", "--nats", inUrl]);
    expect(dispatcher.readyLine).toBe(`diego dispatcher ready (nats nats://diego:***@127.0.0.1:${natsPort})`);

    // Without them: one line naming the problem, no stack trace.
    const wrongFile = path.join(dataDir, "wrong-credentials");
    await writeFile(wrongFile, "diego:not-the-password\n");
    const [refused, wrong, wrongInUrl] = await Promise.all([
      failingDiego(["receptor", "--nats", natsUrl, "--listen", "127.0.0.1:0"]),
      failingDiego(["cell", "--nats", natsUrl, "--nats-creds", wrongFile, "--data-dir", dataDir, "--cell-id", "wrong-creds"]),
      failingDiego(["converger", "--nats", `nats://diego:guessed@127.0.0.1:${natsPort}`]),
    ]);
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toBe(`diego receptor: NATS at ${natsUrl}: authorization violation (give credentials with --nats-creds or user:password in --nats)\n`);
    expect(wrong?.code).toBe(1);
    expect(wrong?.stderr).toBe(`diego cell: NATS at ${natsUrl}: authorization violation (the credentials in ${wrongFile} were refused)\n`);
    expect(wrongInUrl?.stderr).toBe(`diego converger: NATS at nats://diego:***@127.0.0.1:${natsPort}: authorization violation (give credentials with --nats-creds or user:password in --nats)\n`);

    // Restarted on the same data dir: the same credentials, still required.
    await receptor.kill("SIGTERM");
    await dispatcher.kill("SIGTERM");
    await up.kill("SIGTERM");
    const again = await diego(["up", "--data-dir", dataDir, "--nats-port", "0", "--listen", "127.0.0.1:0"]);
    const againPort = Number(/nats:\/\/127\.0\.0\.1:(\d+)/.exec(again.readyLine)![1]);
    expect((await readFile(credsFile, "utf8")).trim()).toBe(creds);
    expect(await rawNatsSession(againPort, "CONNECT {}\r\nPING\r\n")).toBe("-ERR 'Authorization Violation'\r\n");
    expect(await rawNatsSession(againPort, rawNatsPublish({ user, pass: password }, []))).toBe("PONG\r\n");
    // Two `up` starts, a task in a container and six more processes: slow on a loaded 2-core machine.
  }, 150_000);

  it("refuses credential and TLS flags without --nats, since it makes its own", async () => {
    const failed = await failingDiego(["up", "--data-dir", await tempDir("diego-up-flags-"), "--nats-creds", "/etc/hostname"]);
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toBe(
      "diego up: --nats-creds and --nats-tls-* are for an external NATS given with --nats; diego up makes its own credentials for the nats-server it starts\n",
    );
  });
});

describe("NATS credentials files", () => {
  const settings = (over: Record<string, string>) => ({ ...defaultsOf(natsConnectionSettings), ...over });

  it("accepts an nkey user seed, and NATS refuses another seed", async () => {
    const dir = await tempDir("diego-nkey-");
    const user = nkeys.createUser();
    const stranger = nkeys.createUser();
    const nats = await startEmbeddedNats({
      dataDir: dir,
      port: 0,
      config: `authorization { users: [ { nkey: "${user.getPublicKey()}" } ] }`,
    });
    cleanups.push(() => nats.stop());
    const seedFile = path.join(dir, "user.nk");
    await writeFile(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`, { mode: 0o600 });
    const strangerFile = path.join(dir, "stranger.nk");
    await writeFile(strangerFile, new TextDecoder().decode(stranger.getSeed()), { mode: 0o600 });

    const nc = await connectNats({ url: nats.url, name: "nkey-test", auth: await natsAuthFrom(settings({ natsCreds: seedFile })) });
    cleanups.push(() => nc.close());
    expect(await nc.request("$JS.API.INFO", "").then((m) => m.json<{ type: string }>().type)).toBe("io.nats.jetstream.api.v1.account_info_response");
    const refused = connectNats({ url: nats.url, name: "nkey-stranger", auth: { credsFile: strangerFile } });
    await expect(refused).rejects.toThrow(NatsRefusedError);
    await expect(refused).rejects.toThrow(`NATS at ${nats.url}: authorization violation (the credentials in ${strangerFile} were refused)`);
  });

  it("accepts a NATS .creds file (user JWT and seed) for a server in operator mode, and NATS refuses a user of another operator", async () => {
    const dir = await tempDir("diego-jwt-");
    const setup = operatorSetup();
    const nats = await startEmbeddedNats({ dataDir: dir, port: 0, config: setup.config });
    cleanups.push(() => nats.stop());
    const credsFile = path.join(dir, "user.creds");
    await writeFile(credsFile, setup.userCreds("diego-test"), { mode: 0o600 });
    const strangerFile = path.join(dir, "stranger.creds");
    await writeFile(strangerFile, operatorSetup().userCreds("stranger"), { mode: 0o600 });

    const nc = await connectNats({ url: nats.url, name: "jwt-test", auth: await natsAuthFrom(settings({ natsCreds: credsFile })) });
    cleanups.push(() => nc.close());
    const bucket = await openTasksBucket(nc);
    await bucket.put("jwt-key", "stored");
    expect((await bucket.get("jwt-key"))?.string()).toBe("stored");
    await expect(connectNats({ url: nats.url, name: "jwt-stranger", auth: { credsFile: strangerFile } })).rejects.toThrow(
      `NATS at ${nats.url}: authorization violation (the credentials in ${strangerFile} were refused)`,
    );
  });

  it("takes user:password (percent-encoded) or a token from the URL", async () => {
    const withPassword = await startEmbeddedNats({ dataDir: await tempDir("diego-url-pass-"), port: 0, auth: { user: "fleet", password: "p@ss:w/rd" } });
    cleanups.push(() => withPassword.stop());
    const withToken = await startEmbeddedNats({ dataDir: await tempDir("diego-url-token-"), port: 0, config: `authorization { token: "t0ken-s3cret" }` });
    cleanups.push(() => withToken.stop());
    const at = (s: { port: number }, info: string): string => `nats://${info}@127.0.0.1:${s.port}`;
    for (const url of [at(withPassword, "fleet:p%40ss%3Aw%2Frd"), at(withToken, "t0ken-s3cret")]) {
      const nc = await connectNats({ url, name: "url-auth" });
      cleanups.push(() => nc.close());
      expect(await nc.rtt()).toBeGreaterThanOrEqual(0);
    }
    await expect(connectNats({ url: at(withToken, "wrong-token"), name: "url-auth-wrong" })).rejects.toThrow(
      `NATS at nats://***@127.0.0.1:${withToken.port}: authorization violation`,
    );
  });

  it("names the flag and the file when a credentials or TLS file is missing or malformed", async () => {
    const dir = await tempDir("diego-bad-creds-");
    const garbage = path.join(dir, "garbage");
    await writeFile(garbage, "not credentials\n");
    await expect(natsAuthFrom(settings({ natsCreds: garbage }))).rejects.toThrow(
      `--nats-creds: ${garbage} is not a NATS credentials file: expected a .creds file (user JWT and seed), an nkey user seed (SU...), or one line user:password`,
    );
    await expect(natsAuthFrom(settings({ natsCreds: path.join(dir, "absent") }))).rejects.toThrow(
      `--nats-creds: cannot read the NATS credentials file ${path.join(dir, "absent")}: ENOENT`,
    );
    await expect(natsAuthFrom(settings({ natsTlsCa: path.join(dir, "ca.pem") }))).rejects.toThrow(`--nats-tls-ca: cannot read ${path.join(dir, "ca.pem")} (ENOENT)`);
    await expect(natsAuthFrom(settings({ natsTlsCert: garbage }))).rejects.toThrow("--nats-tls-cert and --nats-tls-key go together");
  });

  it("never shows a password from a URL", () => {
    expect(redactNatsUrl("nats://u:p%40ss@a:4222,nats://tok@b:4222,c:4222")).toBe("nats://u:***@a:4222,nats://***@b:4222,c:4222");
    expect(redactNatsUrl("u:secret@127.0.0.1:4222")).toBe("u:***@127.0.0.1:4222");
  });
});
