import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { Action, EnvironmentVariable } from "../../../src/gen/diego/v1/actions_pb.js";
import type { SecurityGroupRule } from "../../../src/gen/diego/v1/task_pb.js";
import type { DownloadCache } from "../executor/index.js";
import type { CellNetwork } from "../network/index.js";
import type { SandboxRuntime } from "../sandbox/index.js";
import type { StartSlots } from "./start-slots.js";

// The cell side of one LRP instance: what it is told to run, what it reports back. The LRP
// model and store are built elsewhere; this input type stands alone so either can change.

/** One instance (index) of a DesiredLRP, as the cell runs it. */
export interface LrpInstanceSpec {
  processGuid: string;
  index: number;
  instanceGuid: string;
  domain: string;
  /** `preloaded:<stack>` or `docker://...`. */
  rootfs: string;
  setup?: Action;
  action: Action;
  monitor?: Action;
  /** Container-level environment, after the instance variables. */
  env: Array<Pick<EnvironmentVariable, "name" | "value">>;
  /** Container ports to publish on the cell's address, in order. */
  ports: number[];
  memoryMb: number;
  diskMb: number;
  cpuWeight: number;
  privileged: boolean;
  /** Seconds the monitor has to pass once it starts; 0 = for ever. */
  startTimeoutSec: number;
  /** Empty: nothing is logged. */
  logGuid: string;
  /** Source of lines no action names; "LOG" when empty. */
  logSource: string;
  securityGroupRules: SecurityGroupRule[];
}

/** A published port as the ActualLRP shows it. */
export interface PortMapping {
  container_port: number;
  host_port: number;
}

export interface RunningInfo {
  /** The cell's address (--cell-address); "" without container networking. */
  address: string;
  ports: PortMapping[];
}

/**
 * Lifecycle reports. onRunning at most once; then exactly one of onCrashed (the instance ended
 * by itself; its processes are dead) or onStopped (stop() was asked; everything is removed).
 */
export interface LrpInstanceEvents {
  onRunning(info: RunningInfo): void;
  onCrashed(info: { reason: string }): void;
  onStopped(): void;
}

/** The 2015 executor's intervals and the stop grace period; tests shorten them. */
export interface LrpTiming {
  /** Between monitor checks until the first one passes (2015: 0.5 s). */
  unhealthyIntervalMs: number;
  /** Between monitor checks once one has passed (2015: 30 s). */
  healthyIntervalMs: number;
  /** Between SIGTERM and SIGKILL on a stop (2015: 10 s). */
  stopGraceMs: number;
}

export const DEFAULT_LRP_TIMING: LrpTiming = { unhealthyIntervalMs: 500, healthyIntervalMs: 30_000, stopGraceMs: 10_000 };

/**
 * Turns a root_fs into overlay layers (the cell's rootfs resolver has this shape; declared here
 * so the cell's agent can import this module without a cycle).
 */
export interface RootfsResolver {
  resolve(rootFs: string, stack: string, signal?: AbortSignal): Promise<{ layers: string[]; env: string[]; workdir: string; user: string }>;
}

/** What the cell shares with every instance it runs. */
export interface LrpRunnerDeps {
  runtime: SandboxRuntime;
  rootfs: RootfsResolver;
  /** Absent: containers get an empty network namespace and can publish no ports. */
  network?: CellNetwork;
  /** Where log lines are published (diego.logs.<log guid>). */
  nc: NatsConnection;
  pidsLimit: number;
  downloadCache: DownloadCache;
  logger: Logger;
  timing?: Partial<LrpTiming>;
  /** Bounds how many instances make their container (and start their first process) at once. */
  startSlots?: StartSlots;
}

export type InstancePhase = "starting" | "running" | "stopping" | "crashed" | "stopped";

/** A running instance. */
export interface LrpInstance {
  readonly spec: LrpInstanceSpec;
  readonly containerId: string;
  phase(): InstancePhase;
  /**
   * Stops it (kill, scale-down, delete): SIGTERM to its processes, the grace period, SIGKILL;
   * resolves once the container, its network, ports and disk are removed.
   */
  stop(): Promise<void>;
  /** Resolves once the instance ended (crash or stop) and everything of it is removed. */
  readonly done: Promise<void>;
}
