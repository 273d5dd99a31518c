import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { connectNats, openTasksBucket } from "../../src/nats/index.js";
import { createTaskIndex, decodeRecord, nowNanos, type TaskIndex } from "../../src/store/index.js";
import { startCallbackServer, type CallbackServer } from "../dispatcher/callback-server.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import type { DiegoProcess } from "../fixtures/receptor.js";
import { createRoleSet, type Role, type RoleSet } from "./chaos-roles.js";
import {
  cellLayout,
  cleanupCell,
  countStarts,
  createProcessSet,
  freePort,
  leftovers,
  seededRandom,
  sleep,
  type StartCounter,
} from "./fault-support.js";
import { createRetryingClient, type CreateOutcome, type RetryingClient } from "./retrying-client.js";

// Chaos: short tasks while cells (2), receptors (2), auctioneers (2) and the dispatcher are
// SIGKILLed and restarted at random (seeded). Afterwards every task completed or failed with a
// reason, no task's action started twice (counted from the lines the tasks print), and every
// completion callback was called at most twice (a dispatcher killed mid-call may leave one round
// unfinished) and resolved its task.

const TASKS = Number(process.env.CHAOS_TASKS ?? 1000);
const SEED = Number(process.env.CHAOS_SEED ?? 20150605);
/** How long the killing goes on at most (it also stops once every task is done). */
const CHAOS_MS = Number(process.env.CHAOS_MS ?? 90_000);
const MAX_KILLS = 120;
/** Tasks are submitted at this rate, so receptor kills meet creates in flight. */
const CREATES_PER_SECOND = Number(process.env.CHAOS_CREATE_RATE ?? 15);
const DEADLINE_MS = Number(process.env.CHAOS_DEADLINE_MS ?? 240_000);
const CELL_TTL = "2s";
const LOG_GUID = "chaos-logs";
const CELL_IDS = ["chaos-cell-1", "chaos-cell-2"];

let nats: TestNats;
let dataDir: string;
let roles: RoleSet;
let nc: NatsConnection;
let index: TaskIndex;
let kv: KV;
let starts: StartCounter;
let callbacks: CallbackServer;
let client: RetryingClient;
const support = createProcessSet();
let converger: DiegoProcess;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-chaos-"));
  nats = await startNats();
  callbacks = await startCallbackServer(() => 200);
  const natsArgs = ["--nats", nats.url];
  // The converger is never killed; it fixes the buckets' TTLs (first opener) for everyone.
  converger = await support.spawn([
    "converger", ...natsArgs,
    "--cell-ttl", CELL_TTL,
    "--lock-ttl", "1500ms",
    "--converge-interval", "500ms",
    "--kick-interval", "2s",
    "--pending-timeout", "10m",
    "--claim-timeout", "30s",
    "--completed-ttl", "10m",
    "--callback-retry-interval", "1s",
  ], { DIEGO_LOG_LEVEL: "info" });
  const ports = [await freePort(), await freePort()];
  const defs = [
    ...CELL_IDS.map((id) => ({
      name: id,
      args: ["cell", ...natsArgs, "--cell-id", id, "--data-dir", dataDir, "--cell-ttl", CELL_TTL, "--memory-mb", "4096", "--disk-mb", "16384", "--containers", "12"],
    })),
    ...ports.map((port, i) => ({
      name: `receptor-${i + 1}`,
      args: ["receptor", ...natsArgs, "--listen", `127.0.0.1:${port}`, "--cell-ttl", CELL_TTL],
    })),
    ...[1, 2].map((i) => ({
      name: `auctioneer-${i}`,
      args: ["auctioneer", ...natsArgs, "--lock-ttl", "1500ms", "--cell-ttl", CELL_TTL, "--placement-retries", "30"],
    })),
    {
      name: "dispatcher",
      args: ["dispatcher", ...natsArgs, "--callback-timeout", "5s", "--callback-retry-interval", "1s", "--completed-ttl", "10m"],
    },
  ];
  roles = createRoleSet(defs);
  await Promise.all(roles.roles.map((r) => roles.start(r)));
  client = createRetryingClient(
    ports.map((p) => `http://127.0.0.1:${p}`),
    60_000,
  );
  nc = await connectNats({ url: nats.url, name: "chaos-test" });
  kv = await openTasksBucket(nc);
  index = await createTaskIndex(kv);
  await index.ready();
  starts = await countStarts(nc, LOG_GUID);
  void (async () => {
    for await (const st of nc.status()) console.log(`TEST NC STATUS ${Date.now()} ${JSON.stringify(st)}`);
  })();
  const raw = await kv.watch();
  void (async () => {
    for await (const e of raw) rawLog.push(`${e.key} ${e.revision} ${e.operation} ${Date.now()}`);
  })();
}, 120_000);
const rawLog: string[] = [];

afterAll(async () => {
  await roles?.killAll();
  await support.killAll();
  for (const id of CELL_IDS) await cleanupCell(cellLayout(dataDir, id)).catch(() => undefined);
  await starts?.stop();
  await index?.stop();
  await nc?.drain().catch(() => undefined);
  await callbacks?.close();
  await nats?.dispose();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

interface Final {
  failed: boolean;
  reason: string;
}

describe("chaos: processes SIGKILLed and restarted at random while tasks run", () => {
  it(`${TASKS} tasks each complete or fail with a reason, none starts twice, callbacks resolve`, async () => {
    const random = seededRandom(SEED);
    const started = Date.now();
    const guids = Array.from({ length: TASKS }, (_, i) => `chaos-${i}`);
    const withCallback = new Set(guids.filter((_, i) => i % 4 === 0));
    const sleeps = guids.map(() => (0.05 + random() * 0.4).toFixed(2));

    // --- the chaos loop: every 1-2 s one live process dies; it is started again 0-0.5 s later.
    let chaosOver = false;
    const restarts: Array<Promise<void>> = [];
    const chaos = (async () => {
      let kills = 0;
      while (!chaosOver && kills < MAX_KILLS && Date.now() - started < CHAOS_MS) {
        await sleep(1000 + random() * 1000);
        const up = roles.roles.filter((r) => r.state === "up");
        const victim: Role | undefined = up[Math.floor(random() * up.length)];
        const delay = random() * 500;
        if (!victim || chaosOver) continue;
        await roles.kill(victim);
        kills += 1;
        restarts.push(sleep(delay).then(() => roles.start(victim)));
      }
    })();

    // --- submissions, paced, through whichever receptor answers.
    const outcomes = new Map<string, CreateOutcome>();
    const submitErrors: string[] = [];
    const submit = async (): Promise<void> => {
      const inFlight = new Set<Promise<void>>();
      for (let i = 0; i < TASKS; i++) {
        const guid = guids[i]!;
        const p = client
          .create(guid, {
            domain: "chaos",
            stack: "lucid64",
            memory_mb: 16,
            log_guid: LOG_GUID,
            env: [
              { name: "GUID", value: guid },
              { name: "SLEEP", value: sleeps[i]! },
            ],
            action: { run: { path: "/bin/sh", args: ["-c", "echo started $GUID; sleep $SLEEP"] } },
            ...(withCallback.has(guid) ? { completion_callback_url: callbacks.url(guid) } : {}),
          })
          .then((o) => void outcomes.set(guid, o))
          .catch((err: Error) => void submitErrors.push(err.message))
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
        const due = started + ((i + 1) * 1000) / CREATES_PER_SECOND;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      await Promise.all(inFlight);
    };
    await submit();
    const submittedMs = Date.now() - started;
    expect(submitErrors).toEqual([]);
    expect(outcomes.size).toBe(TASKS);

    // --- wait for the end state: callback tasks resolved (called, then removed), others COMPLETED.
    const done = (g: string): boolean =>
      withCallback.has(g) ? callbacks.callsFor(g).length > 0 && index.get(g) === undefined : index.get(g)?.record.task?.state === TaskState.COMPLETED;
    const deadline = started + DEADLINE_MS;
    let remaining = guids.filter((g) => !done(g));
    while (remaining.length > 0 && Date.now() < deadline) {
      if (!chaosOver && remaining.length < TASKS * 0.02) chaosOver = true;
      await sleep(250);
      remaining = remaining.filter((g) => !done(g));
    }
    chaosOver = true;
    await chaos;
    await Promise.all(restarts);
    const doneMs = Date.now() - started;
    if (remaining.length > 0) {
      const states = await Promise.all(
        remaining.slice(0, 10).map(async (g) => {
          const e = await kv.get(g);
          const r = e && e.length > 0 ? decodeRecord(e.value) : undefined;
          const ageMs = r ? Number((nowNanos() - r.updatedAt) / 1_000_000n) : -1;
          return `${g}: index ${TaskState[index.get(g)?.record.task?.state ?? 0]} rev ${index.get(g)?.revision} store ${e?.operation} rev ${e?.revision} ${TaskState[r?.task?.state ?? 0]} idle ${ageMs} ms calls=${callbacks.callsFor(g).length}`;
        }),
      );
      const mism: string[] = [];
      for (const g of guids) {
        const e = await kv.get(g);
        const storeRev = e?.revision ?? 0;
        const idxRev = index.get(g)?.revision ?? 0;
        if (e && e.operation === "PUT" ? idxRev !== storeRev : idxRev !== 0) mism.push(`${g} idx ${idxRev} store ${storeRev} ${e?.operation}; raw: ${rawLog.filter((l) => l.startsWith(g + " ")).join(" | ")}`);
      }
      console.log(`MISMATCHES ${mism.length}\n${mism.join("\n")}`);
      throw new Error(`${remaining.length} tasks not done after ${DEADLINE_MS} ms, e.g. ${states.join("; ")}`);
    }

    // --- every task ended with an outcome; callback tasks report theirs in the callback body.
    const finals = new Map<string, Final>();
    for (const g of guids) {
      if (withCallback.has(g)) {
        const body = callbacks.callsFor(g)[0]!.body as { failed: boolean; failure_reason: string; state: string };
        expect(body.state).toBe("COMPLETED");
        finals.set(g, { failed: body.failed, reason: body.failure_reason });
      } else {
        const t = index.get(g)!.record.task!;
        finals.set(g, { failed: t.failed, reason: t.failureReason });
      }
    }
    const failedWithoutReason = [...finals].filter(([, f]) => f.failed && !f.reason);
    expect(failedWithoutReason).toEqual([]);
    const succeeded = [...finals].filter(([, f]) => !f.failed).map(([g]) => g);
    const reasons = new Map<string, number>();
    for (const f of finals.values()) if (f.failed) reasons.set(f.reason, (reasons.get(f.reason) ?? 0) + 1);

    // --- at most once: no task's start line arrived twice; a task that succeeded did start.
    await sleep(500);
    expect(starts.duplicates()).toEqual([]);
    const succeededWithoutStart = succeeded.filter((g) => !starts.counts.has(g));
    expect(succeededWithoutStart).toEqual([]);

    // --- callbacks: at most two calls each (a second only after an unfinished round), all resolved.
    const callCounts = [...withCallback].map((g) => callbacks.callsFor(g).length);
    expect(Math.max(...callCounts)).toBeLessThanOrEqual(2);
    for (const g of withCallback) expect(await client.status(g), g).toBe(404);

    // --- nothing left running; a graceful stop of the cells leaves no container behind.
    const stillRunning = index.list().filter((t) => t.record.task!.state !== TaskState.COMPLETED);
    expect(stillRunning.map((t) => t.record.task!.taskGuid)).toEqual([]);
    for (const role of roles.roles.filter((r) => r.name.startsWith("chaos-cell"))) {
      await role.proc!.kill("SIGTERM");
      role.state = "down";
      expect(await leftovers(cellLayout(dataDir, role.name)), role.name).toEqual({ containers: [], mounts: [], cgroups: [] });
    }
    expect(await runtimeProcessesUnder(dataDir)).toEqual([]);

    const count = (o: CreateOutcome): number => [...outcomes.values()].filter((x) => x === o).length;
    const report = {
      tasks: TASKS,
      seed: SEED,
      submittedMs,
      doneMs,
      succeeded: succeeded.length,
      failed: Object.fromEntries(reasons),
      creates: { created: count("created"), createdOnRetry: count("created-on-retry"), existsAfterRetry: count("exists-after-retry"), failedAttempts: client.failedAttempts() },
      kills: Object.fromEntries(roles.roles.map((r) => [r.name, r.kills])),
      startLines: { tasksWithLine: starts.counts.size, missing: TASKS - starts.counts.size },
      callbacks: { tasks: withCallback.size, calledTwice: callCounts.filter((n) => n === 2).length },
    };
    console.log(`chaos report: ${JSON.stringify(report)}`);
  }, DEADLINE_MS + 60_000);
});

const run = promisify(execFile);

/** runc processes still working in the cells' directories (orphans of killed cells). */
async function runtimeProcessesUnder(dir: string): Promise<string[]> {
  const { stdout } = await run("ps", ["-eo", "pid,args"]);
  return stdout
    .split("\n")
    .filter((l) => l.includes(dir) && /\b(runc|crun)\b/.test(l));
}
