import type { Logger } from "pino";
import type { Action } from "../../../src/gen/diego/v1/actions_pb.js";
import { runStep, type StepContext } from "../executor/index.js";
import type { LogStreamer } from "../logs/index.js";
import type { ContainerNetwork } from "../network/index.js";
import { releaseOnFirstStart, type Sandbox, type StartSlot } from "../sandbox/index.js";
import { abortableWait } from "./abortable-wait.js";
import { instanceContainerId } from "./container-id.js";
import { CONTAINER_INIT_FAILED, NoNetworkForPortsError } from "./errors.js";
import { containerEnv, networkEnv } from "./instance-env.js";
import { createInstanceLogStreamer } from "./instance-logs.js";
import { runInstanceSteps } from "./instance-steps.js";
import {
  DEFAULT_LRP_TIMING,
  type InstancePhase,
  type LrpInstance,
  type LrpInstanceEvents,
  type LrpInstanceSpec,
  type LrpRunnerDeps,
  type LrpTiming,
  type RunningInfo,
} from "./types.js";
import { validateInstanceSpec } from "./validate-spec.js";

/**
 * Starts one LRP instance in its own long-lived container and reports its life through events.
 * Throws InvalidLrpInstanceError at once for a spec it cannot run; every later failure is a
 * crash (onCrashed) with the 2015 reason.
 */
export function startLrpInstance(spec: LrpInstanceSpec, deps: LrpRunnerDeps, events: LrpInstanceEvents): LrpInstance {
  validateInstanceSpec(spec);
  return new InstanceRun(spec, deps, events);
}

const TERM_POLL_MS = 100;

class InstanceRun implements LrpInstance {
  readonly containerId: string;
  readonly done: Promise<void>;
  private current: InstancePhase = "starting";
  private readonly timing: LrpTiming;
  private readonly log: Logger;
  /** Kills whatever still runs at once (and stops a rootfs pull). */
  private readonly kill = new AbortController();
  private readonly monitorStop = new AbortController();
  private stopRequested = false;
  private sandbox?: Sandbox;
  private net?: ContainerNetwork;
  private steps?: Promise<string>;
  private running?: RunningInfo;
  /** ms since construction at each start step (logged with "instance running"). */
  private readonly spans: Record<string, number> = {};
  private readonly t0 = performance.now();

  constructor(
    readonly spec: LrpInstanceSpec,
    private readonly deps: LrpRunnerDeps,
    private readonly events: LrpInstanceEvents,
  ) {
    this.containerId = instanceContainerId(spec.processGuid, spec.instanceGuid);
    this.timing = { ...DEFAULT_LRP_TIMING, ...deps.timing };
    this.log = deps.logger.child({ lrp: spec.processGuid, index: spec.index, instance: spec.instanceGuid });
    this.done = this.run();
  }

  phase(): InstancePhase {
    return this.current;
  }

  stop(): Promise<void> {
    if (!this.stopRequested) {
      this.stopRequested = true;
      if (this.current === "starting" || this.current === "running") this.current = "stopping";
      this.monitorStop.abort();
      void this.terminate();
    }
    return this.done;
  }

  /**
   * SIGTERM, then the grace period or the end of the steps, whichever is first, then SIGKILL.
   * Processes that appear during the grace period (an exec still starting) get SIGTERM too.
   */
  private async terminate(): Promise<void> {
    const { steps, sandbox } = this;
    if (steps && sandbox?.signal) {
      this.log.info({ graceMs: this.timing.stopGraceMs }, "stopping instance");
      const ended = new AbortController();
      void steps.finally(() => ended.abort());
      const deadline = Date.now() + this.timing.stopGraceMs;
      const signalled = new Set<number>();
      while (!ended.signal.aborted && Date.now() < deadline) {
        for (const pid of await sandbox.signal("SIGTERM", signalled).catch(() => [])) signalled.add(pid);
        await abortableWait(Math.min(TERM_POLL_MS, deadline - Date.now()), ended.signal);
      }
    }
    this.kill.abort();
  }

  private async run(): Promise<void> {
    const logs = createInstanceLogStreamer({
      nc: this.deps.nc,
      logGuid: this.spec.logGuid,
      logSource: this.spec.logSource,
      index: this.spec.index,
      logger: this.log,
    });
    let reason = CONTAINER_INIT_FAILED;
    let user = "";
    let slot: StartSlot | undefined;
    try {
      // The cell's start queue (shared with tasks): held while the container is made and, on the
      // one-process path, until its process runs.
      slot = await this.deps.starts?.acquire(this.kill.signal);
      this.mark("slot");
      user = await this.createContainer(logs);
    } catch (err) {
      if (!this.stopRequested) this.log.warn({ err }, "instance container could not be made");
    }
    const oneProcess = this.sandbox !== undefined && this.oneProcess();
    if (this.sandbox && slot && oneProcess && !this.stopRequested) this.sandbox = releaseOnFirstStart(this.sandbox, slot);
    else slot?.release();
    if (this.sandbox && !this.stopRequested) {
      this.steps = runInstanceSteps(this.spec, this.stepContext(this.sandbox, logs, user, oneProcess), {
        unhealthyIntervalMs: this.timing.unhealthyIntervalMs,
        healthyIntervalMs: this.timing.healthyIntervalMs,
        startTimeoutSec: this.spec.startTimeoutSec,
        monitorStop: this.monitorStop.signal,
        onRunning: () => this.reportRunning(),
        logTimeout: (text) => logs.source().line(text, "stderr"),
      });
      reason = await this.steps;
    }
    slot?.release();
    await this.finish(this.stopRequested, reason, logs);
  }

  /** Rootfs, network (rules, published ports) and container; returns the image's user. */
  private async createContainer(logs: LogStreamer): Promise<string> {
    const { spec, deps } = this;
    const root = await deps.rootfs.resolve(spec.rootfs, "", this.kill.signal);
    this.mark("rootfs");
    if (spec.ports.length > 0 && !deps.network) throw new NoNetworkForPortsError();
    const netLog = logs.source("NETWORK");
    this.net = await deps.network?.attach({
      id: this.containerId,
      rules: spec.securityGroupRules,
      ports: spec.ports,
      onLog: (line) => netLog.line(line),
    });
    this.mark("network");
    if (this.stopRequested) return root.user;
    const ports = (this.net?.ports ?? []).map((p) => ({ container_port: p.containerPort, host_port: p.hostPort }));
    this.running = { address: deps.network?.cellAddress ?? "", ports };
    this.sandbox = await deps.runtime.create({
      id: this.containerId,
      network: this.net,
      bindMounts: this.net ? [{ source: this.net.resolvConf, destination: "/etc/resolv.conf", readonly: true }] : undefined,
      layers: root.layers,
      env: containerEnv(spec, root.env),
      workdir: root.workdir,
      privileged: spec.privileged,
      limits: { memoryMb: spec.memoryMb, cpuWeight: spec.cpuWeight, diskMb: spec.diskMb, pids: deps.pidsLimit },
    });
    this.mark("container");
    return root.user;
  }

  /**
   * No setup, no monitor, one run action with an absolute path: the action is started with the
   * container (one runtime invocation, as a one-process task) instead of an idle init and an
   * exec. It runs as the child of a minimal PID 1, so a stop's SIGTERM still reaches it.
   */
  private oneProcess(): boolean {
    const { setup, monitor, action } = this.spec;
    return !setup && !monitor && action.action.case === "run" && action.action.value.path.startsWith("/");
  }

  private stepContext(sandbox: Sandbox, logs: LogStreamer, defaultUser: string, oneProcess: boolean): StepContext {
    const extra = networkEnv(this.running?.address ?? "", this.running?.ports ?? []);
    // Every run action, however deep, gets the network variables after its own env.
    const withNetworkEnv = (action: Action, ctx: StepContext): Promise<void> => {
      const a = action.action;
      if (a.case !== "run") return runStep(action, ctx);
      return runStep({ ...action, action: { case: "run", value: { ...a.value, env: [...a.value.env, ...extra] } } }, ctx);
    };
    return {
      sandbox,
      logs,
      downloads: this.deps.downloadCache,
      signal: this.kill.signal,
      logger: this.log,
      source: logs.defaultSource,
      defaultUser,
      runStep: withNetworkEnv,
      singleProcess: { available: oneProcess, asChild: true },
    };
  }

  private reportRunning(): void {
    if (this.stopRequested || this.current !== "starting") return;
    this.current = "running";
    const info = this.running ?? { address: "", ports: [] };
    this.mark("running");
    this.log.info({ address: info.address, ports: info.ports, spans: this.spans }, "instance running");
    this.emit(() => this.events.onRunning(info));
  }

  /**
   * Removes the container, then its network and ports. A crash is reported as soon as the
   * processes are dead (the old address no longer answers), a stop once everything is gone.
   */
  private async finish(stopped: boolean, reason: string, logs: LogStreamer): Promise<void> {
    let reported = false;
    const reportCrash = (): void => {
      if (stopped || reported) return;
      reported = true;
      this.current = "crashed";
      this.log.info({ reason }, "instance crashed");
      this.emit(() => this.events.onCrashed({ reason }));
    };
    this.net?.stopLogging();
    await logs.flush().catch(() => undefined);
    this.kill.abort();
    await this.sandbox?.destroy({ onStopped: reportCrash }).catch((err: unknown) => this.log.error({ err }, "instance container cleanup failed"));
    reportCrash();
    await this.net?.release().catch((err: unknown) => this.log.error({ err }, "instance network cleanup failed"));
    if (stopped) {
      this.current = "stopped";
      this.log.info("instance stopped");
      this.emit(() => this.events.onStopped());
    }
  }

  private mark(step: string): void {
    this.spans[step] = Math.round(performance.now() - this.t0);
  }

  private emit(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, "LRP instance event handler failed");
    }
  }
}
