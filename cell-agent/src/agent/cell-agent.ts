import { randomUUID } from "node:crypto";
import { mkdir, statfs } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { CellPresenceSchema, LrpInstanceCountSchema } from "../../../src/gen/diego/v1/cell_pb.js";
import { WorkRequestSchema, WorkResponseSchema } from "../../../src/gen/diego/v1/internal_pb.js";
import { TaskState } from "../../../src/gen/diego/v1/task_pb.js";
import { openCellsBucket, openLrpBuckets, openTasksBucket, connectNats, type NatsAuth, subjects, onNatsStatus } from "../../../src/nats/index.js";
import { applyUntilDone, createCellRegistry, createLrpStore, createTaskStore, transitions, type StoredTask, type TaskStore } from "../../../src/store/index.js";
import type { CrashPolicy } from "../../../src/model/index.js";
import { createResourceLedger, type ResourceLedger } from "../capacity/index.js";
import { createDownloadCache } from "../executor/index.js";
import { createImageStore } from "../images/index.js";
import { startHeartbeat, currentPresence, type CellIdentity } from "../presence/index.js";
import { ensureBusyboxRootfs } from "../rootfs/index.js";
import { startCellNetwork, type CellNetwork } from "../network/index.js";
import { createStartQueue, type StartQueue } from "../sandbox/index.js";
import { usableRuntime } from "./usable-runtime.js";
import { createRootfsResolver } from "./rootfs-resolver.js";
import { createLrpHost, parseStopMessage, type LrpHost } from "./lrp-host.js";
import type { LrpTiming } from "../lrp/index.js";
import { runClaimedTask, type TaskRunnerDeps } from "./task-runner.js";
import { claimWorkDir, type WorkDirClaim } from "./work-dir-claim.js";
import { registerCellLedger, registerStartQueue } from "../../../src/metrics/index.js";

export interface CellAgentOptions {
  natsUrl: string;
  /** Credentials and TLS for NATS. */
  natsAuth?: NatsAuth;
  cellId: string;
  stacks: string[];
  /** stack -> directory; stacks without one get the built-in busybox root filesystem. */
  rootfs: Map<string, string>;
  workDir: string;
  runtime: "runc" | "crun";
  /** The runtime was not chosen by the user: when crun is missing or unusable, use runc (and say so). */
  runtimeFallback?: boolean;
  /** Most containers created or started at once; the rest wait in order (default 2 per core). */
  maxStarting?: number;
  /** 0 = detect from the machine. */
  memoryMb: number;
  diskMb: number;
  containers: number;
  zone: string;
  cellTtlMs: number;
  pidsLimit: number;
  dockerRegistry: string;
  insecureRegistries?: string[];
  /** Container networking (--network-cidr, ...); false = containers get an empty namespace. */
  network?: NetworkSettings | false;
  logger: Logger;
  /** How long to wait for NATS at start (0 or absent: for ever). */
  natsWaitMs?: number;
  /** Replicas of the buckets (a NATS cluster); see src/nats/buckets.ts. */
  replicas?: number;
  /** LRP monitor intervals and stop grace (tests shorten them); default the 2015 ones. */
  lrpTiming?: Partial<LrpTiming>;
  /** How long an evacuating cell keeps a RUNNING instance whose replacement is not up (default 10 min). */
  evacuationTimeoutMs?: number;
  /** The LRP crash policy the cell applies when it writes a crash (the converger uses the same). */
  crashPolicy?: CrashPolicy;
}

export interface NetworkSettings {
  cidr?: string;
  dnsServers?: string[];
  hostPorts?: string;
  cellAddress?: string;
}

export interface CellAgent {
  readonly cellId: string;
  readonly sessionId: string;
  /** Guids of tasks this cell is running now. */
  running(): string[];
  /** LRP instances on this cell now. */
  lrpInstances(): number;
  /** Tasks and LRP instances waiting for, or holding, a container start slot. */
  readonly starts: StartQueue;
  /**
   * SIGTERM's drain: takes no new work, hands its LRP instances to other cells and keeps each
   * RUNNING one until its replacement runs (or --evacuation-timeout). Call stop() afterwards.
   */
  evacuate(): Promise<void>;
  stop(): Promise<void>;
}

const CANCEL_CHECK_MS = 2_000;
/** 2015's rep evacuation_timeout_in_seconds default. */
const DEFAULT_EVACUATION_TIMEOUT_MS = 600_000;

export async function startCellAgent(opts: CellAgentOptions): Promise<CellAgent> {
  const workDir = path.resolve(opts.workDir);
  const claim = await claimWorkDir(workDir); // before removing anything "left behind" in it
  // A start that fails gives the work dir back: the lock would otherwise last as long as the process.
  return startClaimed(opts, workDir, claim).catch(async (err: unknown) => {
    await claim.release();
    throw err;
  });
}

async function startClaimed(opts: CellAgentOptions, workDir: string, claim: WorkDirClaim): Promise<CellAgent> {
  const logger = opts.logger.child({ cell: opts.cellId });
  const runtime = await usableRuntime({ runtime: opts.runtime, fallback: opts.runtimeFallback ?? false, workDir: path.join(workDir, "containers"), logger });
  const starts = createStartQueue(opts.maxStarting || defaultMaxStarting());
  // After the containers: removes the networks a killed cell left, then sets up the bridge.
  const network: CellNetwork | undefined = opts.network === false ? undefined : await startCellNetwork({ ...opts.network, workDir, logger });
  const preloaded = await preloadedRootfs(opts, workDir);
  const images = createImageStore({
    cacheDir: path.join(workDir, "images"),
    defaultRegistry: opts.dockerRegistry,
    insecureRegistries: opts.insecureRegistries,
    logger,
  });

  const nc: NatsConnection = await connectNats({ url: opts.natsUrl, name: `diego-cell-${opts.cellId}`, logger, auth: opts.natsAuth, waitMs: opts.natsWaitMs });
  const buckets = { replicas: opts.replicas, logger };
  await openTasksBucket(nc, buckets); // creates the bucket on first use
  const store = createTaskStore(nc);
  const lrpStore = createLrpStore(nc, await openLrpBuckets(nc, buckets), { crashPolicy: opts.crashPolicy });
  const registry = await createCellRegistry(await openCellsBucket(nc, opts.cellTtlMs, buckets), opts.cellTtlMs, { nc, logger });
  const ledger = createResourceLedger(await machineCapacity(opts, workDir));
  const unregisterLedger = registerCellLedger(opts.cellId, ledger);
  const unregisterStarts = registerStartQueue(opts.cellId, starts);
  // Claims whose container start has not begun (work being claimed, queued for a slot) or is
  // under way: the cell takes no more than it can start soon, so other cells get the rest.
  const horizon = starts.limit * START_HORIZON_FACTOR;
  let admitting = 0;
  const startRoom = (): number => {
    const { starting, queued } = starts.state();
    return Math.max(0, horizon - admitting - starting - queued);
  };
  /** Work was declined for want of start room: kick the auction once room frees. */
  let declined = false;
  let wasStarting = 0;
  const offStarts = starts.onChange((s) => {
    const freed = s.starting < wasStarting;
    wasStarting = s.starting;
    if (freed && declined && startRoom() > 0) {
      declined = false;
      nc.publish(subjects.auctionKick, "");
    }
  });
  const identity: CellIdentity = {
    cellId: opts.cellId,
    sessionId: randomUUID(),
    stacks: opts.stacks,
    zone: opts.zone,
    rootfsSchemes: ["docker"],
  };
  let evacuating = false;
  let lrps: LrpHost | undefined;
  const presence = () => {
    const p = currentPresence(identity, ledger);
    p.evacuating = evacuating;
    p.lrpInstances = Object.entries(lrps?.counts() ?? {}).map(([processGuid, count]) => create(LrpInstanceCountSchema, { processGuid, count }));
    return p;
  };
  /** The bid: the presence, offering no more containers than it can start soon. */
  const bid = () => {
    const p = presence();
    const room = startRoom();
    if (p.available && p.available.containers > room) {
      p.available.containers = room;
      declined = true;
    }
    return p;
  };
  const stopping = new AbortController();
  const deps: TaskRunnerDeps = {
    cellId: opts.cellId,
    sessionId: identity.sessionId,
    stopping: stopping.signal,
    store,
    nc,
    runtime,
    starts,
    rootfs: createRootfsResolver(preloaded, images),
    pidsLimit: opts.pidsLimit,
    downloadCache: createDownloadCache({ dir: path.join(workDir, "downloads"), logger }),
    network,
    logger,
    // Room is free once the container is stopped: tasks waiting for room get an auction now.
    onContainerStopped: (guid) => {
      ledger.releaseStopped(guid);
      nc.publish(subjects.auctionKick, "");
    },
  };
  const lrpHost = createLrpHost({
    cellId: opts.cellId,
    store: lrpStore,
    nc,
    ledger,
    logger,
    runner: {
      runtime,
      starts,
      rootfs: deps.rootfs,
      network,
      nc,
      pidsLimit: opts.pidsLimit,
      downloadCache: deps.downloadCache,
      logger,
      timing: opts.lrpTiming,
    },
  });
  lrps = lrpHost;
  const tasks = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /** Tasks whose claim is being written: held too, though not running yet. */
  const claiming = new Set<string>();

  const launch = (claimed: StoredTask): void => {
    const guid = claimed.record.task!.taskGuid;
    if (tasks.has(guid)) return; // one runner per task, whatever arrives twice
    const abort = new AbortController();
    const done = runClaimedTask(claimed, deps, abort.signal)
      .catch((err: unknown) => logger.error({ err, task: guid }, "task runner failed"))
      .finally(() => {
        tasks.delete(guid);
        ledger.release(guid);
        // Room was freed: tasks waiting for room get another auction now.
        nc.publish(subjects.auctionKick, "");
      });
    tasks.set(guid, { abort, done });
  };

  const subs = [
    nc.subscribe(subjects.auctionBids, {
      callback: (_err, msg) => void msg.respond(toBinary(CellPresenceSchema, bid())),
    }),
    nc.subscribe(subjects.cellWork(opts.cellId), {
      callback: (_err, msg) => {
        const { taskGuids, lrpStarts } = fromBinary(WorkRequestSchema, msg.data);
        // Taken in the auction's order up to the start room; the rest stays PENDING for the
        // next auction (this cell's or another's).
        const admitted = evacuating ? [] : taskGuids.slice(0, startRoom());
        const declinedNow = taskGuids.slice(admitted.length);
        if (declinedNow.length > 0 && !evacuating) declined = true;
        admitting += admitted.length;
        const taking = takeWork(admitted, { store, ledger, id: identity, launch, claiming, isRunning: (g) => tasks.has(g), stopping: stopping.signal, logger }).finally(
          () => (admitting -= admitted.length),
        );
        void Promise.all([
          taking.then((rejected) => [...rejected, ...declinedNow]),
          lrpHost.take(lrpStarts),
        ]).then(([rejected, rejectedLrps]) => msg.respond(toBinary(WorkResponseSchema, create(WorkResponseSchema, { rejected, rejectedLrps }))));
      },
    }),
    nc.subscribe(subjects.lrpStop(opts.cellId), {
      callback: (_err, msg) => {
        const stop = parseStopMessage(msg.data);
        if (stop) void lrpHost.stop(stop);
        else logger.warn({ body: msg.string().slice(0, 200) }, "LRP stop message without process_guid, index and instance_guid ignored");
      },
    }),
    nc.subscribe(subjects.cellCancel(opts.cellId), {
      callback: (_err, msg) => void tasks.get(msg.string())?.abort.abort(),
    }),
    // The converger asks which of the tasks the store has on this cell the cell really holds
    // (running, or a result still to be written); the others fail with a clear reason.
    nc.subscribe(subjects.cellHeld(opts.cellId), {
      callback: (_err, msg) => {
        const asked = parseHeldRequest(msg.data);
        const held = asked.filter((g) => tasks.has(g) || claiming.has(g));
        msg.respond(JSON.stringify({ session_id: identity.sessionId, held }));
      },
    }),
  ];

  // Reconciliation: a cancel message can be missed (NATS was down), and a task may be failed
  // or removed behind the cell's back: check the records of the tasks it runs, every few seconds
  // and at once after a reconnect, and stop the containers of those no longer its own.
  const reconcile = (): void => void checkCancelled(store, tasks, opts.cellId);
  const cancelCheck = setInterval(reconcile, CANCEL_CHECK_MS);
  const heartbeat = startHeartbeat(registry, presence, Math.max(100, Math.floor(opts.cellTtlMs / 3)), logger);
  const stopStatus = onNatsStatus(nc, (s) => {
    if (s.type !== "reconnect") return;
    logger.info({ running: tasks.size }, "NATS reconnected: announcing and reconciling now");
    void heartbeat.beat();
    reconcile();
  });
  await heartbeat.beat();
  logger.info({ stacks: opts.stacks, capacity: ledger.total, runtime: runtime.name }, "cell ready");

  return {
    cellId: opts.cellId,
    sessionId: identity.sessionId,
    running: () => [...tasks.keys()],
    starts,
    lrpInstances: () => lrpHost.size(),
    async evacuate() {
      evacuating = true;
      logger.info({ instances: lrpHost.size() }, "evacuating");
      await heartbeat.beat().catch(() => undefined);
      await lrpHost.evacuate(opts.evacuationTimeoutMs ?? DEFAULT_EVACUATION_TIMEOUT_MS);
    },
    async stop() {
      clearInterval(cancelCheck);
      stopStatus();
      heartbeat.stop();
      unregisterLedger();
      unregisterStarts();
      offStarts();
      for (const s of subs) s.unsubscribe();
      // Tasks stopped by a shutdown fail through the converger (`cell disappeared before completion`).
      for (const t of tasks.values()) t.abort.abort();
      stopping.abort();
      // Instances still here (no evacuation) are replaced through the converger.
      await Promise.all([...[...tasks.values()].map((t) => t.done), lrpHost.shutdown()]);
      lrpStore.close();
      await registry.withdraw(opts.cellId).catch(() => undefined);
      registry.stop();
      await nc.drain().catch(() => undefined);
      await network?.close().catch((err: unknown) => logger.warn({ err }, "removing the container network failed"));
      await claim.release();
    },
  };
}

interface WorkDeps {
  isRunning(guid: string): boolean;
  store: TaskStore;
  ledger: ResourceLedger;
  id: CellIdentity;
  launch: (claimed: StoredTask) => void;
  claiming: Set<string>;
  stopping: AbortSignal;
  logger: Logger;
}

/** Claims what fits of the work the auction sent; returns the guids it could not take. */
async function takeWork(taskGuids: string[], deps: WorkDeps): Promise<string[]> {
  const { store, ledger, id, launch, claiming, isRunning, logger } = deps;
  const records = await Promise.all(taskGuids.map((g) => store.get(g).catch(() => null)));
  const rejected: string[] = [];
  const toClaim: StoredTask[] = [];
  records.forEach((stored, i) => {
    const guid = taskGuids[i]!;
    // Unreadable now (NATS trouble): handed back, so the auction tries it again.
    if (stored === null) return void rejected.push(guid);
    const t = stored?.record.task;
    if (!stored || !t || t.state !== TaskState.PENDING) return;
    // Sent again while its claim is still being written (an auction gave up waiting for the
    // answer): one claim, one runner. A retried claim counts as "already so", so a second
    // one here would start the task twice.
    if (claiming.has(guid) || isRunning(guid)) return;
    if (ledger.reserve(guid, Math.max(0, t.memoryMb), Math.max(0, t.diskMb))) toClaim.push(stored);
    else rejected.push(guid);
  });
  await Promise.all(
    toClaim.map(async (stored) => {
      const guid = stored.record.task!.taskGuid;
      claiming.add(guid);
      try {
        // The record just read is the one to swap from: no second read per claim. Retried until
        // written or refused: a claim that went through unseen must not leave the task CLAIMED
        // on this cell with nothing running it.
        const claimed = await applyUntilDone(store, guid, transitions.claim(id.cellId, id.sessionId), {
          known: stored,
          signal: deps.stopping,
          logger,
          what: `claim task ${guid}`,
        });
        if (deps.stopping.aborted) throw new Error("cell stopping");
        launch(claimed);
      } catch (err) {
        // Lost the race (cancelled, or claimed by another cell): run nothing.
        ledger.release(guid);
        logger.debug({ task: guid, reason: (err as Error).message }, "claim lost");
      } finally {
        claiming.delete(guid);
      }
    }),
  );
  return rejected;
}

async function checkCancelled(
  store: TaskStore,
  tasks: Map<string, { abort: AbortController }>,
  cellId: string,
): Promise<void> {
  await Promise.all(
    [...tasks].map(async ([guid, t]) => {
      const stored = await store.get(guid).catch(() => null);
      if (stored === null) return; // NATS unreachable: keep running.
      const task = stored?.record.task;
      const ours = task && (task.state === TaskState.CLAIMED || task.state === TaskState.RUNNING) && task.cellId === cellId;
      if (!ours) t.abort.abort();
    }),
  );
}

/** The converger's question: `{"tasks": [guid, ...]}`. */
function parseHeldRequest(data: Uint8Array): string[] {
  try {
    const body = JSON.parse(new TextDecoder().decode(data)) as { tasks?: unknown };
    return Array.isArray(body.tasks) ? body.tasks.filter((g): g is string => typeof g === "string") : [];
  } catch {
    return [];
  }
}

/** Claims allowed ahead of the starts: the bound itself plus as many queued again. */
const START_HORIZON_FACTOR = 2;

/** Two starts per core kept this 2-core cell at its best rate (docs/load.md). */
export function defaultMaxStarting(): number {
  return Math.max(2, 2 * os.availableParallelism());
}

async function preloadedRootfs(opts: CellAgentOptions, workDir: string): Promise<Map<string, string>> {
  const out = new Map(opts.rootfs);
  const missing = opts.stacks.filter((s) => !out.has(s));
  if (missing.length > 0) {
    const builtin = path.join(workDir, "rootfs", "busybox");
    await mkdir(path.dirname(builtin), { recursive: true });
    await ensureBusyboxRootfs(builtin);
    for (const s of missing) out.set(s, builtin);
  }
  return out;
}

async function machineCapacity(opts: CellAgentOptions, workDir: string): Promise<{ memoryMb: number; diskMb: number; containers: number }> {
  const memoryMb = opts.memoryMb || Math.floor(os.totalmem() / 1024 / 1024);
  let diskMb = opts.diskMb;
  if (!diskMb) {
    const fs = await statfs(workDir);
    diskMb = Math.floor((fs.bavail * fs.bsize) / 1024 / 1024);
  }
  return { memoryMb, diskMb, containers: opts.containers };
}
