// One cell's worth of real parts for LRP instances: nats-server (logs), runc, the busybox
// rootfs, a cell network whose published ports are reached at a test host's link address.
import { create, fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { createRootfsResolver } from "../../cell-agent/src/agent/rootfs-resolver.js";
import { createDownloadCache } from "../../cell-agent/src/executor/index.js";
import { createImageStore } from "../../cell-agent/src/images/index.js";
import {
  startLrpInstance,
  type LrpInstance,
  type LrpInstanceSpec,
  type LrpRunnerDeps,
  type LrpTiming,
  type RunningInfo,
} from "../../cell-agent/src/lrp/index.js";
import { startCellNetwork, type CellNetwork } from "../../cell-agent/src/network/index.js";
import { ensureBusyboxRootfs } from "../../cell-agent/src/rootfs/index.js";
import { createSandboxRuntime, type SandboxRuntime } from "../../cell-agent/src/sandbox/index.js";
import { ActionSchema, type Action } from "../../src/gen/diego/v1/actions_pb.js";
import { LogMessageSchema, type LogMessage } from "../../src/gen/diego/v1/internal_pb.js";
import { connectNats, subjects, subjectToken } from "../../src/nats/index.js";
import { startNats, type TestNats } from "../fixtures/nats.js";
import { startTestHost, type TestHost } from "../network/test-host.js";

export type ActionInit = MessageInitShape<typeof ActionSchema>;

export const sh = (script: string, extra: Record<string, unknown> = {}): Action =>
  create(ActionSchema, { action: { case: "run", value: { path: "/bin/sh", args: ["-c", script], ...extra } } });

/** Fast 2015 intervals: checks every 100 ms until healthy, then every 300 ms; 1.5 s grace. */
export const FAST: LrpTiming = { unhealthyIntervalMs: 100, healthyIntervalMs: 300, stopGraceMs: 1500 };

export interface Observed {
  instance: LrpInstance;
  spec: LrpInstanceSpec;
  running: Promise<RunningInfo>;
  /** Resolves with the crash reason. */
  crashed: Promise<string>;
  stopped: Promise<void>;
  /** Names of the events in order: running, crashed, stopped. */
  events: string[];
  logs: LogMessage[];
  /** "SOURCE stream: text" lines. */
  lines(): string[];
  /** Resolves once count log messages satisfy match. */
  waitForLogs(match: (m: LogMessage) => boolean, count?: number): Promise<void>;
}

export interface LrpFixture {
  dir: string;
  workDir: string;
  host: TestHost;
  network: CellNetwork;
  runtime: SandboxRuntime;
  nc: NatsConnection;
  start(spec: Partial<LrpInstanceSpec> & Pick<LrpInstanceSpec, "action">, timing?: Partial<LrpTiming>, deps?: Partial<LrpRunnerDeps>): Promise<Observed>;
  cleanup(): Promise<void>;
}

export async function setupLrpFixture(): Promise<LrpFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lrp-test-"));
  const workDir = path.join(dir, "cell");
  const logger = pino({ level: "silent" });
  const [nats, rootfs, host] = await Promise.all([startNats(), ensureBusyboxRootfs(path.join(dir, "busybox")), startTestHost(1)]);
  let natsToClose: TestNats | undefined = nats;
  try {
    const nc = await connectNats({ url: nats.url, name: "lrp-test" });
    const runtime = createSandboxRuntime({ runtime: "runc", workDir: path.join(workDir, "containers") });
    const network = await startCellNetwork({ workDir, cellAddress: host.hostAddress, logger });
    const images = createImageStore({ cacheDir: path.join(dir, "images"), defaultRegistry: "127.0.0.1:1", logger });
    const base: LrpRunnerDeps = {
      runtime,
      rootfs: createRootfsResolver(new Map([["lucid64", rootfs]]), images),
      network,
      nc,
      pidsLimit: 1024,
      downloadCache: createDownloadCache({ dir: path.join(dir, "downloads"), logger }),
      logger,
    };
    const live: LrpInstance[] = [];
    natsToClose = undefined;
    return {
      dir,
      workDir,
      host,
      network,
      runtime,
      nc,
      async start(overrides, timing = {}, deps = {}) {
        const spec: LrpInstanceSpec = {
          processGuid: `lrp-${randomBytes(4).toString("hex")}`,
          index: 0,
          instanceGuid: randomUUID(),
          domain: "test",
          rootfs: "preloaded:lucid64",
          env: [],
          ports: [],
          memoryMb: 0,
          diskMb: 0,
          cpuWeight: 0,
          privileged: false,
          startTimeoutSec: 0,
          logGuid: `log-${randomBytes(4).toString("hex")}`,
          logSource: "",
          securityGroupRules: [],
          ...overrides,
        };
        const observed = await observe(nc, spec);
        const instance = startLrpInstance(spec, { ...base, ...deps, timing: { ...FAST, ...timing } }, observed.handlers);
        live.push(instance);
        return { ...observed.view, instance, spec };
      },
      async cleanup() {
        await Promise.allSettled(live.map((i) => i.stop()));
        await runtime.cleanupStale().catch(() => undefined);
        await network.close().catch(() => undefined);
        await nc.close();
        await nats.dispose();
        host.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } finally {
    if (natsToClose) {
      await natsToClose.dispose();
      host.stop();
    }
  }
}

async function observe(nc: NatsConnection, spec: LrpInstanceSpec) {
  const logs: LogMessage[] = [];
  const waiters: Array<{ match: (m: LogMessage) => boolean; count: number; resolve: () => void }> = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      if (logs.filter(w.match).length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  nc.subscribe(subjects.logs(subjectToken(spec.logGuid)), {
    callback: (err, msg) => {
      if (err) return;
      logs.push(fromBinary(LogMessageSchema, msg.data));
      check();
    },
  });
  await nc.flush();
  const events: string[] = [];
  let onRunning!: (info: RunningInfo) => void;
  let onCrashed!: (reason: string) => void;
  let onStopped!: () => void;
  const running = new Promise<RunningInfo>((r) => (onRunning = r));
  const crashed = new Promise<string>((r) => (onCrashed = r));
  const stopped = new Promise<void>((r) => (onStopped = r));
  return {
    handlers: {
      onRunning: (info: RunningInfo) => {
        events.push("running");
        onRunning(info);
      },
      onCrashed: ({ reason }: { reason: string }) => {
        events.push("crashed");
        onCrashed(reason);
      },
      onStopped: () => {
        events.push("stopped");
        onStopped();
      },
    },
    view: {
      running,
      crashed,
      stopped,
      events,
      logs,
      lines: () => logs.map((m) => `${m.sourceName} ${m.stream === 2 ? "stderr" : "stdout"}: ${m.message}`),
      waitForLogs: (match: (m: LogMessage) => boolean, count = 1) =>
        new Promise<void>((resolve) => {
          waiters.push({ match, count, resolve });
          check();
        }),
    },
  };
}
