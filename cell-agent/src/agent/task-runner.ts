import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { TaskResponse } from "../../../src/gen/diego/v1/task_pb.js";
import { applyUntilDone, InvalidStateTransitionError, TaskNotFoundError, transitions, type Outcome, type StoredTask, type TaskStore } from "../../../src/store/index.js";
import { executeTask, type DownloadCache } from "../executor/index.js";
import { createLogStreamer } from "../logs/index.js";
import { allowsIcmp, type CellNetwork, type ContainerNetwork } from "../network/index.js";
import { releaseOnFirstStart, type Sandbox, type SandboxRuntime, type StartQueue, type StartSlot } from "../sandbox/index.js";
import type { RootfsResolver } from "./rootfs-resolver.js";
import { containerCreateSeconds, taskStartSeconds } from "../../../src/metrics/index.js";

export interface TaskRunnerDeps {
  cellId: string;
  /** This run of the cell: a start retried after a lost reply recognises its own write. */
  sessionId: string;
  /** Aborted when the cell stops: writes still being retried give up then. */
  stopping: AbortSignal;
  store: TaskStore;
  nc: NatsConnection;
  runtime: SandboxRuntime;
  /** Bounds the containers being created or started at once; tasks wait here in order. */
  starts: StartQueue;
  rootfs: RootfsResolver;
  pidsLimit: number;
  /** Shared by all tasks of the cell: cache_key downloads and the concurrent-download limit. */
  downloadCache: DownloadCache;
  /** Container networking; absent = every container gets an empty network namespace. */
  network?: CellNetwork;
  logger: Logger;
  /** The task's container is stopped (its filesystem is still being removed). */
  onContainerStopped?: (taskGuid: string) => void;
}

/**
 * Runs one claimed task: CLAIMED -> RUNNING (compare-and-swap, so the process can start at most
 * once), container, actions, then COMPLETED with the outcome. A task cancelled meanwhile is
 * already COMPLETED: the cell kills the container and leaves that outcome alone. Both writes are
 * retried through NATS outages and leader elections until they are done or refused; the
 * outcome waits in memory meanwhile, and the runner (so the cell's list of what it holds) lasts
 * until it is written.
 */
export async function runClaimedTask(claimed: StoredTask, deps: TaskRunnerDeps, signal: AbortSignal): Promise<void> {
  const guid = claimed.record.task!.taskGuid;
  const log = deps.logger.child({ task: guid });
  const giveUp = AbortSignal.any([signal, deps.stopping]);
  let slot: StartSlot;
  try {
    // CLAIMED while it waits: RUNNING means its container is being made.
    slot = await deps.starts.acquire(giveUp);
  } catch {
    log.info("task left the start queue (cancelled, or the cell is stopping)");
    return;
  }
  try {
    await startAndRun(claimed, deps, signal, giveUp, slot, log);
  } finally {
    slot.release();
  }
}

async function startAndRun(claimed: StoredTask, deps: TaskRunnerDeps, signal: AbortSignal, giveUp: AbortSignal, slot: StartSlot, log: Logger): Promise<void> {
  const guid = claimed.record.task!.taskGuid;
  let started: StoredTask;
  try {
    // Swap from the claim this cell just wrote; a change since (a cancel) makes it re-read.
    started = await applyUntilDone(deps.store, guid, transitions.start(deps.cellId, deps.sessionId), {
      known: claimed,
      signal: giveUp,
      logger: log,
      what: `start task ${guid}`,
    });
  } catch (err) {
    if (err instanceof InvalidStateTransitionError || err instanceof TaskNotFoundError) {
      log.info({ reason: err.message }, "task no longer ours to start");
      return;
    }
    throw err;
  }
  const { outcome, cleanup } = await runInSandbox(started.record.task!, deps, signal, slot, log);
  try {
    if (!signal.aborted) {
      await applyUntilDone(deps.store, guid, transitions.complete(deps.cellId, outcome), {
        known: started,
        signal: deps.stopping,
        logger: log,
        what: `complete task ${guid}`,
      });
    }
  } catch (err) {
    if (!(err instanceof InvalidStateTransitionError || err instanceof TaskNotFoundError)) throw err;
    log.info({ reason: err.message }, "task was finished elsewhere (cancelled or failed by the converger)");
  } finally {
    // The result is reported first; removing the container is not on the user's clock.
    await cleanup();
  }
}

async function runInSandbox(
  task: TaskResponse,
  deps: TaskRunnerDeps,
  signal: AbortSignal,
  slot: StartSlot,
  log: Logger,
): Promise<{ outcome: Outcome; cleanup: () => Promise<void> }> {
  let sandbox: Sandbox | undefined;
  let net: ContainerNetwork | undefined;
  const logs = createLogStreamer({
    nc: deps.nc,
    logGuid: task.logGuid,
    taskGuid: task.taskGuid,
    defaultSource: task.logSource || "LOG",
  });
  const cleanup = async (): Promise<void> => {
    await sandbox?.destroy({ onStopped: () => deps.onContainerStopped?.(task.taskGuid) }).catch((err: unknown) => log.error({ err }, "container cleanup failed"));
    await net?.release().catch((err: unknown) => log.error({ err }, "container network cleanup failed"));
  };
  let outcome: Outcome;
  try {
    const endStart = taskStartSeconds.startTimer();
    const root = await deps.rootfs.resolve(task.rootFs, task.stack, signal);
    const id = containerId(task.taskGuid);
    const netLog = logs.source("NETWORK");
    const endCreate = containerCreateSeconds.startTimer();
    // The egress rules load (in the nftables helper) while the filesystem is prepared; the
    // sandbox asks for the namespace only when its first process starts, after both.
    const attaching = deps.network?.attach({ id, rules: task.securityGroupRules, onLog: (line) => netLog.line(line) });
    const [attached, created] = await Promise.allSettled([
      attaching,
      deps.runtime.create({
        id,
        network: attaching && {
          allowsIcmp: allowsIcmp(task.securityGroupRules),
          namespaceFiles: async (owner) => (await attaching).namespaceFiles(owner),
        },
        bindMounts: deps.network ? [{ source: deps.network.resolvConf, destination: "/etc/resolv.conf", readonly: true }] : undefined,
        layers: root.layers,
        env: [...root.env, ...task.env.map((e) => `${e.name}=${e.value}`)],
        workdir: root.workdir,
        privileged: task.privileged,
        limits: { memoryMb: task.memoryMb, cpuWeight: task.cpuWeight, diskMb: task.diskMb, pids: deps.pidsLimit },
      }),
    ]);
    if (attached.status === "fulfilled") net = attached.value;
    if (created.status === "fulfilled") sandbox = created.value;
    if (attached.status === "rejected") throw attached.reason;
    if (created.status === "rejected") throw created.reason;
    endCreate();
    endStart();
    outcome = await executeTask(task, {
      // The start slot goes to the next container once this one's first process runs.
      sandbox: releaseOnFirstStart(created.value, slot),
      logs,
      signal,
      logger: log,
      defaultUser: root.user,
      // A download waits on the network, not on the cores: the next container may start.
      downloadCache: { fetch: (req, use) => (slot.release(), deps.downloadCache.fetch(req, use)) },
    });
  } catch (err) {
    log.warn({ err }, "task could not run");
    outcome = { failed: true, failureReason: failureReason(err), result: "" };
  }
  net?.stopLogging();
  await logs.flush().catch(() => undefined);
  return { outcome, cleanup };
}

function failureReason(err: unknown): string {
  if (err && typeof err === "object" && "reason" in err && typeof err.reason === "string") return err.reason;
  const message = err instanceof Error ? err.message : String(err);
  return `failed to run container: ${message}`.slice(0, 1024);
}

/** Container ids must be short and filesystem-safe; task guids are [A-Za-z0-9_-]+ of any length. */
function containerId(guid: string): string {
  return guid.length <= 64 ? guid : `${guid.slice(0, 40)}-${hash(guid)}`;
}

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16);
}
