import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskState } from "../../src/gen/diego/v1/task_pb.js";
import { decodeRecord, type TaskIndex } from "../../src/store/index.js";
import { startCallbackServer, type CallbackServer } from "../dispatcher/callback-server.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { freePort } from "../fixtures/ports.js";
import { createRoleSet, startChaosLoop, type ChaosLoop, type RoleSet } from "./chaos-roles.js";
import {
  cellLayout,
  cleanupCell,
  leftovers,
  openObserver,
  seededRandom,
  sleep,
  type Observer,
  type StartCounter,
} from "./fault-support.js";
import { startNatsChaos, overlapsOutage, type NatsChaos } from "./nats-chaos.js";
import { createRetryingClient, type CreateOutcome, type RetryingClient } from "./retrying-client.js";
import { CELL_DISAPPEARED_REASON } from "../../src/converger/index.js";
import { removeDataDir } from "../fixtures/data-dir.js";

// Chaos: short tasks while cells (2), receptors (2), auctioneers (2) and the dispatcher are
// SIGKILLed and restarted at random (seeded), and nats-server itself is SIGKILLed a few times and
// stays down 1-8 s each time. Afterwards every task completed or failed with a reason, no task's
// action started twice (counted from the lines the tasks print), every completion callback was
// called at most twice (a dispatcher killed mid-call leaves a round unfinished, which is retried)
// and resolved its task, and no task failed with `cell disappeared` unless its cell was killed
// while it ran.

// 600 by default: since every container has a network namespace a 2-core cell completes about 5
// tasks a second under this chaos, and 1000 tasks ended 15-25 s short of the deadline. Same
// faults, same checks; CHAOS_TASKS=1000 for the longer run.
const TASKS = Number(process.env.CHAOS_TASKS ?? 600);
const SEED = Number(process.env.CHAOS_SEED ?? 20150605);
/** Kills happen in this window from the start of the run (longer if some process was never killed). */
const CHAOS_MS = Number(process.env.CHAOS_MS ?? 60_000);
/** At most this many processes are down (or still starting) at once. */
const MAX_DOWN = 3;
const MAX_KILLS = 80;
/** Tasks are submitted at this rate, so receptor kills meet creates in flight. */
const CREATES_PER_SECOND = Number(process.env.CHAOS_CREATE_RATE ?? 20);
/** From the start of the run until every task must be done... */
const DEADLINE_MS = Number(process.env.CHAOS_DEADLINE_MS ?? 240_000);
/** ...or this long after the chaos ended, whichever is later (a loaded machine restarts slowly). */
const AFTER_CHAOS_MS = 120_000;
const CREATE_DEADLINE_MS = 400_000;
/** Set to a directory to keep every process's log there. */
const LOG_DIR = process.env.CHAOS_LOG_DIR;
const CELL_TTL = "2s";
const LOG_GUID = "chaos-logs";
const CELL_IDS = ["chaos-cell-1", "chaos-cell-2"];
const NEVER_KILLED = "converger";
/** nats-server kills, spread over the chaos window, each down for 1-8 s. */
const NATS_KILLS = Number(process.env.CHAOS_NATS_KILLS ?? 3);
const NATS_DOWN_MS: [number, number] = [1_000, 8_000];

let nats: TestNats;
let natsChaos: NatsChaos | undefined;
let dataDir: string;
let roles: RoleSet | undefined;
let chaos: ChaosLoop | undefined;
let nc: NatsConnection;
let kv: KV;
let index: TaskIndex;
let starts: StartCounter;
let observer: Observer;
let callbacks: CallbackServer;
let client: RetryingClient;

function roleDefs(natsUrl: string, ports: number[]): Array<{ name: string; args: string[] }> {
  const natsFlag = ["--nats", natsUrl];
  return [
    {
      // First: it creates the buckets, whose TTLs every other process then shares.
      name: NEVER_KILLED,
      args: [
        "converger", ...natsFlag,
        "--cell-ttl", CELL_TTL,
        "--lock-ttl", "1500ms",
        "--converge-interval", "500ms",
        "--kick-interval", "3s",
        "--pending-timeout", "10m",
        "--claim-timeout", "30s",
        "--completed-ttl", "10m",
        "--callback-retry-interval", "1s",
      ],
    },
    ...CELL_IDS.map((id) => ({
      name: id,
      args: ["cell", ...natsFlag, "--cell-id", id, "--data-dir", dataDir, "--cell-ttl", CELL_TTL, "--memory-mb", "4096", "--disk-mb", "16384", "--containers", "12"],
    })),
    ...ports.map((port, i) => ({
      name: `receptor-${i + 1}`,
      args: ["receptor", ...natsFlag, "--listen", `127.0.0.1:${port}`, "--cell-ttl", CELL_TTL],
    })),
    ...[1, 2].map((i) => ({
      name: `auctioneer-${i}`,
      // Both cells can be down for a while: keep tasks pending rather than failing placement.
      args: ["auctioneer", ...natsFlag, "--lock-ttl", "1500ms", "--cell-ttl", CELL_TTL, "--placement-retries", "100"],
    })),
    {
      name: "dispatcher",
      args: ["dispatcher", ...natsFlag, "--callback-timeout", "5s", "--callback-retry-interval", "1s", "--completed-ttl", "10m"],
    },
  ];
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "diego-chaos-"));
  nats = await startNats();
  callbacks = await startCallbackServer(() => 200);
  const ports = [await freePort(), await freePort()];
  roles = createRoleSet(roleDefs(nats.url, ports), { logDir: LOG_DIR, env: LOG_DIR ? { DIEGO_LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? "info" } : {} });
  await roles.start(roles.roles[0]!);
  await Promise.all(roles.roles.slice(1).map((r) => roles!.start(r)));
  client = createRetryingClient(
    ports.map((p) => `http://127.0.0.1:${p}`),
    // Long enough to outlast nats-server outages (its restart alone took up to a minute on a
    // loaded machine) plus a receptor restart.
    CREATE_DEADLINE_MS,
  );
  observer = await openObserver(nats.url, "chaos-test", LOG_GUID);
  ({ nc, kv, index, starts } = observer);
}, 300_000);

afterAll(async () => {
  await chaos?.stop();
  await natsChaos?.stop();
  if (natsChaos) nats = natsChaos.current();
  await roles?.killAll();
  for (const id of CELL_IDS) await cleanupCell(cellLayout(dataDir, id)).catch(() => undefined);
  await observer?.close();
  await callbacks?.close();
  await nats?.dispose();
  if (dataDir) await removeDataDir(dataDir);
}, 60_000);

interface Outcome {
  failed: boolean;
  reason: string;
}

describe("chaos: processes SIGKILLed and restarted at random while tasks run", () => {
  it(`${TASKS} tasks each complete or fail with a reason, none starts twice, callbacks resolve`, async () => {
    const set = roles!;
    const random = seededRandom(SEED);
    const began = Date.now();
    const guids = Array.from({ length: TASKS }, (_, i) => `chaos-${i}`);
    const withCallback = new Set(guids.filter((_, i) => i % 4 === 0));
    const sleeps = guids.map(() => (0.05 + random() * 0.4).toFixed(2));

    // Which cell each task was on, and when it was created and completed (record times).
    const seen = new Map<string, { cell?: string; createdMs: number; completedMs?: number }>();
    const stopTracking = index.subscribe((guid, _before, after) => {
      const r = after?.record;
      if (!r?.task) return;
      const t = seen.get(guid) ?? { createdMs: Number(r.task.createdAt / 1_000_000n) };
      if (r.task.cellId) t.cell = r.task.cellId;
      if (r.firstCompletedAt > 0n) t.completedMs ??= Number(r.firstCompletedAt / 1_000_000n);
      seen.set(guid, t);
    });
    const submittedAt = new Map<string, number>();

    chaos = startChaosLoop(set, { random, windowMs: CHAOS_MS, maxDown: MAX_DOWN, maxKills: MAX_KILLS, spared: [NEVER_KILLED] });
    natsChaos = startNatsChaos(nats, {
      random: seededRandom(SEED + 1),
      windowMs: CHAOS_MS,
      kills: NATS_KILLS,
      minDownMs: NATS_DOWN_MS[0],
      maxDownMs: NATS_DOWN_MS[1],
    });

    // Submissions, paced, through whichever receptor answers.
    const outcomes = new Map<string, CreateOutcome>();
    const submitErrors: string[] = [];
    const inFlight: Array<Promise<void>> = [];
    for (let i = 0; i < TASKS; i++) {
      const guid = guids[i]!;
      submittedAt.set(guid, Date.now());
      inFlight.push(
        client
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
          .catch((err: Error) => void submitErrors.push(err.message)),
      );
      const due = began + ((i + 1) * 1000) / CREATES_PER_SECOND;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    await Promise.all(inFlight);
    const submittedMs = Date.now() - began;
    expect(submitErrors).toEqual([]);
    expect(outcomes.size).toBe(TASKS);

    await chaos.finished;
    await natsChaos.finished;
    const outages = natsChaos.outages;
    const chaosEndedMs = Date.now() - began;

    // The end state: callback tasks resolved (called, then removed), the others COMPLETED.
    const done = (g: string): boolean =>
      withCallback.has(g)
        ? callbacks.callsFor(g).length > 0 && index.get(g) === undefined
        : index.get(g)?.record.task?.state === TaskState.COMPLETED;
    let remaining = guids.filter((g) => !done(g));
    const doneAtChaosEnd = TASKS - remaining.length;
    const deadline = Math.max(began + DEADLINE_MS, Date.now() + AFTER_CHAOS_MS);
    while (remaining.length > 0 && Date.now() < deadline) {
      await sleep(250);
      remaining = remaining.filter((g) => !done(g));
    }
    const doneMs = Date.now() - began;
    if (remaining.length > 0) throw new Error(`${remaining.length} tasks not done after ${doneMs} ms: ${await describeTasks(remaining.slice(0, 10))}`);

    // Every task ended with an outcome; callback tasks report theirs in the callback body.
    const outcomeOf = new Map<string, Outcome>();
    for (const g of guids) {
      if (withCallback.has(g)) {
        const body = callbacks.callsFor(g)[0]!.body as { failed: boolean; failure_reason: string; state: string };
        expect(body.state).toBe("COMPLETED");
        outcomeOf.set(g, { failed: body.failed, reason: body.failure_reason });
      } else {
        const t = index.get(g)!.record.task!;
        outcomeOf.set(g, { failed: t.failed, reason: t.failureReason });
      }
    }
    expect([...outcomeOf].filter(([, o]) => o.failed && !o.reason)).toEqual([]);
    const succeeded = [...outcomeOf].filter(([, o]) => !o.failed).map(([g]) => g);
    const reasons: Record<string, number> = {};
    for (const o of outcomeOf.values()) if (o.failed) reasons[o.reason] = (reasons[o.reason] ?? 0) + 1;

    stopTracking();
    const lifetime = (g: string): [number, number] => [submittedAt.get(g)!, seen.get(g)?.completedMs ?? Date.now()];

    // At most once: no task's start line arrived twice; every task that succeeded did start. A
    // line printed while nats-server was down is lost (log lines are not stored), so a task that
    // ran then may lack one.
    await nc.flush();
    expect(starts.duplicates()).toEqual([]);
    expect(succeeded.filter((g) => !starts.counts.has(g) && !overlapsOutage(outages, ...lifetime(g), 2_000))).toEqual([]);

    // Fair judgement of cells: `cell disappeared` only for a task whose cell (or, when no record
    // showed which one, some cell) was killed while the task lived.
    const cellKills = (id?: string): number[] =>
      set.roles.filter((r) => CELL_IDS.includes(r.name) && (id === undefined || r.name === id)).flatMap((r) => r.killedAt);
    const unfair = [...outcomeOf]
      .filter(([, o]) => o.reason === CELL_DISAPPEARED_REASON)
      .map(([g]) => g)
      .filter((g) => {
        const [from, to] = lifetime(g);
        return !cellKills(seen.get(g)?.cell).some((k) => k >= from && k <= to);
      });
    expect(unfair.map((g) => `${g} on ${seen.get(g)?.cell ?? "?"}`)).toEqual([]);

    // Callbacks: at most two calls each (a second only after an unfinished round); all resolved.
    const callCounts = [...withCallback].map((g) => callbacks.callsFor(g).length);
    expect(Math.max(...callCounts)).toBeLessThanOrEqual(2);
    for (const g of withCallback) expect(await client.status(g), g).toBe(404);

    // Nothing is left running, and cells stopped normally leave no container, mount or cgroup.
    expect(index.list().filter((t) => t.record.task!.state !== TaskState.COMPLETED)).toEqual([]);
    for (const role of set.roles.filter((r) => CELL_IDS.includes(r.name))) {
      await set.kill(role, "SIGTERM");
      expect(await leftovers(cellLayout(dataDir, role.name)), role.name).toEqual({ containers: [], mounts: [], cgroups: [] });
    }
    expect(await runtimeProcessesUnder(dataDir)).toEqual([]);

    // The chaos reached every kind of process, and nats-server.
    expect(outages.length).toBe(NATS_KILLS);
    for (const role of set.roles.filter((r) => r.name !== NEVER_KILLED)) expect(role.kills, role.name).toBeGreaterThan(0);

    const count = (o: CreateOutcome): number => [...outcomes.values()].filter((x) => x === o).length;
    const restartMs = set.roles.flatMap((r) => r.startMs.slice(1)).sort((a, b) => a - b);
    const report = {
      tasks: TASKS,
      seed: SEED,
      submittedMs,
      chaosEndedMs,
      doneAtChaosEnd,
      doneMs,
      succeeded: succeeded.length,
      failed: reasons,
      creates: {
        created: count("created"),
        createdOnRetry: count("created-on-retry"),
        existsAfterRetry: count("exists-after-retry"),
        failedAttempts: client.failedAttempts(),
      },
      kills: Object.fromEntries(set.roles.filter((r) => r.name !== NEVER_KILLED).map((r) => [r.name, r.kills])),
      natsOutagesMs: outages.map((o) => o.to - o.from),
      restartMs: { min: restartMs[0], median: restartMs[Math.floor(restartMs.length / 2)], max: restartMs.at(-1) },
      startLines: { tasksWithLine: starts.counts.size, withoutLine: TASKS - starts.counts.size },
      callbacks: { tasks: withCallback.size, calledOnce: callCounts.filter((n) => n === 1).length, calledTwice: callCounts.filter((n) => n === 2).length },
    };
    console.log(`chaos report: ${JSON.stringify(report)}`);
  }, CREATE_DEADLINE_MS + AFTER_CHAOS_MS + 60_000);
});

/** States of unfinished tasks, from the store itself (for the failure message). */
async function describeTasks(guids: string[]): Promise<string> {
  const lines = await Promise.all(
    guids.map(async (g) => {
      const e = await kv.get(g);
      const stored = e?.operation === "PUT" && e.length > 0 ? TaskState[decodeRecord(e.value).task!.state] : e?.operation ?? "absent";
      const indexed = TaskState[index.get(g)?.record.task?.state ?? TaskState.UNSPECIFIED];
      return `${g}: store ${stored}, index ${indexed}, callbacks ${callbacks.callsFor(g).length}`;
    }),
  );
  return lines.join("; ");
}

const run = promisify(execFile);

/** runc processes still working in the cells' directories (orphans of killed cells). */
async function runtimeProcessesUnder(dir: string): Promise<string[]> {
  const { stdout } = await run("ps", ["-eo", "pid,args"]);
  return stdout.split("\n").filter((l) => l.includes(dir) && /\b(runc|crun)\b/.test(l));
}
