// Containers with networking, without a whole cell: the sandbox fixture plus a CellNetwork.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import type { SecurityGroupRule } from "../../src/gen/diego/v1/task_pb.js";
import { startCellNetwork, type CellNetwork, type ContainerNetwork } from "../../cell-agent/src/network/index.js";
import type { Sandbox } from "../../cell-agent/src/sandbox/index.js";
import { collect, setupFixture, uniqueId, type Fixture } from "../sandbox/fixtures/sandbox-fixture.js";

export interface NetContainer {
  net: ContainerNetwork;
  sandbox: Sandbox;
  /** Runs `sh -c script` in the container; its exit code and output. */
  sh(script: string): Promise<{ exitCode: number; out: string }>;
}

export interface NetFixture {
  fx: Fixture;
  network: CellNetwork;
  /** The network's work dir (namespace files, leases, port reservations under network/). */
  workDir: string;
  container(opts?: { rules?: Array<Partial<SecurityGroupRule>>; ports?: number[]; privileged?: boolean }): Promise<NetContainer>;
  cleanup(): Promise<void>;
}

export function rule(r: Partial<SecurityGroupRule>): SecurityGroupRule {
  return { $typeName: "diego.v1.SecurityGroupRule", protocol: "tcp", destination: "", destinations: [], ports: [], log: false, ...r };
}

export async function setupNetFixture(opts: { cellAddress?: string; cidr?: string } = {}): Promise<NetFixture> {
  const fx = await setupFixture();
  const workDir = await mkdtemp(path.join(os.tmpdir(), "net-test-"));
  const network = await startCellNetwork({ workDir, logger: pino({ level: "silent" }), ...opts });
  const nets: ContainerNetwork[] = [];
  return {
    fx,
    network,
    workDir,
    async container(o = {}) {
      const id = uniqueId("n");
      const net = await network.attach({ id, rules: (o.rules ?? []).map(rule), ports: o.ports });
      nets.push(net);
      const sandbox = await fx.sandbox({
        id,
        privileged: o.privileged ?? true,
        network: net,
        bindMounts: [{ source: net.resolvConf, destination: "/etc/resolv.conf", readonly: true }],
      });
      return {
        net,
        sandbox,
        async sh(script) {
          const c = collect();
          const r = await sandbox.run({ path: "/bin/sh", args: ["-c", script], env: [] }, c.io);
          return { exitCode: r.exitCode, out: c.stdout() + c.stderr() };
        },
      };
    },
    async cleanup() {
      try {
        await fx.cleanup();
      } finally {
        await Promise.allSettled(nets.map((n) => n.release()));
        await network.close();
        await rm(workDir, { recursive: true, force: true });
      }
    },
  };
}

/** Polls `fn` until it is true (for things the kernel finishes in the background). */
export async function eventually(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
