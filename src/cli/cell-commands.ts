import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { NetworkConfigError, startCellAgent, type CellAgent } from "../../cell-agent/src/index.js";
import { startAuctioneer, type Auctioneer } from "../auction/index.js";
import { InvalidSettingError, type Settings } from "./settings.js";

// The auctioneer and cell-agent processes, as `diego auctioneer`, `diego cell` and inside `diego up`.

export async function runAuctioneer(s: Settings, natsUrl: string, logger: Logger): Promise<Auctioneer> {
  return startAuctioneer({
    natsUrl,
    logger,
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

export async function runCell(s: Settings, natsUrl: string, logger: Logger): Promise<CellAgent> {
  const cellId = cellIdFrom(s);
  const runtime = s.runtime as "runc" | "crun"; // one of the setting's choices, checked when parsed
  return startCellAgent({
    natsUrl,
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

function parseRootfs(entries: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const eq = e.indexOf("=");
    if (eq <= 0) throw new InvalidSettingError(`--rootfs entries are stack=/dir, got '${e}'`);
    out.set(e.slice(0, eq), path.resolve(e.slice(eq + 1)));
  }
  return out;
}
