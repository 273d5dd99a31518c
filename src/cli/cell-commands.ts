import { chmod, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { NetworkConfigError, startCellAgent, type CellAgent } from "../../cell-agent/src/index.js";
import { startAuctioneer, type Auctioneer } from "../auction/index.js";
import type { NatsAuth } from "../nats/connect-options.js";
import { InvalidSettingError, type Settings } from "./settings.js";

// The auctioneer and cell-agent processes, as `diego auctioneer`, `diego cell` and inside `diego up`.

/** How a process meets NATS (see natsFleetOptions in commands.ts). */
export interface FleetOptions {
  natsWaitMs?: number;
  replicas?: number;
}

export async function runAuctioneer(s: Settings, natsUrl: string, natsAuth: NatsAuth, logger: Logger, fleet: FleetOptions = {}): Promise<Auctioneer> {
  return startAuctioneer({
    natsUrl,
    natsAuth,
    logger,
    ...fleet,
    cellTtlMs: Number(s.cellTtl),
    lockTtlMs: Number(s.lockTtl),
    maxPlacementAttempts: Number(s.placementRetries),
    retryDelayMs: Math.max(Number(s.auctionInterval) * 10, 500),
  });
}

export function cellIdFrom(s: Settings): string {
  const given = String(s.cellId);
  if (given && !/^[A-Za-z0-9_-]+$/.test(given)) {
    throw new InvalidSettingError(`--cell-id may only hold letters, digits, - and _, got '${given}'`);
  }
  return given || `cell-${os.hostname().replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

export async function runCell(s: Settings, natsUrl: string, natsAuth: NatsAuth, logger: Logger, fleet: FleetOptions = {}): Promise<CellAgent> {
  const cellId = cellIdFrom(s);
  const runtime = s.runtime as "runc" | "crun"; // one of the setting's choices, checked when parsed
  await privateDirs(path.resolve(String(s.dataDir)));
  return startCellAgent({
    natsUrl,
    natsAuth,
    ...fleet,
    cellId,
    stacks: s.stacks as string[],
    rootfs: parseRootfs(s.rootfs as string[]),
    workDir: path.resolve(String(s.dataDir), "cells", cellId),
    runtime,
    memoryMb: Number(s.memoryMb),
    diskMb: Number(s.diskMb),
    containers: Number(s.containers),
    zone: String(s.zone),
    cellTtlMs: Number(s.cellTtl),
    pidsLimit: Number(s.pidsLimit),
    dockerRegistry: String(s.dockerRegistry),
    insecureRegistries: s.insecureRegistries as string[],
    network: {
      cidr: String(s.networkCidr),
      dnsServers: s.dnsServers as string[],
      hostPorts: String(s.hostPorts),
      cellAddress: String(s.cellAddress),
    },
    logger,
  }).catch((err: unknown) => {
    // A pool that clashes with the machine's routes is a setting to change: one line, exit 2.
    throw err instanceof NetworkConfigError ? new InvalidSettingError(err.message) : err;
  });
}

/**
 * The data dir holds container files and runtime state: created 0700 when absent. An existing one
 * keeps its mode (it may be a shared dir such as /tmp); its `cells` dir is made 0700, so only root
 * passes either way.
 */
async function privateDirs(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const cells = path.join(dataDir, "cells");
  await mkdir(cells, { recursive: true, mode: 0o700 });
  await chmod(cells, 0o700);
}

function parseRootfs(entries: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const eq = e.indexOf("=");
    if (eq <= 0) throw new InvalidSettingError(`--rootfs entries are stack=/dir, got '${e}'`);
    out.set(e.slice(0, eq), path.resolve(e.slice(eq + 1)));
  }
  return out;
}
