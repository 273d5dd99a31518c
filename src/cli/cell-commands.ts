import { chmod, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { NetworkConfigError, startCellAgent, type CellAgent, type cellSettings } from "../../cell-agent/src/index.js";
import { startAuctioneer, type Auctioneer, type auctioneerSettings } from "../auction/index.js";
import type { NatsAuth } from "../nats/index.js";
import type { SettingsOf } from "../settings/index.js";
import { crashPolicyFrom, type cellTtlSettings } from "../store/index.js";
import { InvalidSettingError, type dataDirSettings } from "./settings.js";

// The auctioneer and cell-agent processes, as `diego auctioneer`, `diego cell` and inside `diego up`.

/** How a process meets NATS (see natsFleetOptions in commands.ts). */
export interface FleetOptions {
  natsWaitMs?: number;
  replicas?: number;
}

type AuctioneerSettings = SettingsOf<typeof auctioneerSettings>;
export type CellCommandSettings = SettingsOf<typeof cellSettings & typeof dataDirSettings & typeof cellTtlSettings>;

export async function runAuctioneer(s: AuctioneerSettings, natsUrl: string, natsAuth: NatsAuth, logger: Logger, fleet: FleetOptions = {}): Promise<Auctioneer> {
  return startAuctioneer({
    natsUrl,
    natsAuth,
    logger,
    ...fleet,
    cellTtlMs: s.cellTtl,
    lockTtlMs: s.lockTtl,
    maxPlacementAttempts: s.placementRetries,
    retryDelayMs: Math.max(s.auctionInterval * 10, 500),
  });
}

export function cellIdFrom(s: Pick<CellCommandSettings, "cellId">): string {
  const given = s.cellId;
  if (given && !/^[A-Za-z0-9_-]+$/.test(given)) {
    throw new InvalidSettingError(`--cell-id may only hold letters, digits, - and _, got '${given}'`);
  }
  return given || `cell-${os.hostname().replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

/** `given`: the settings the user set; a --runtime left at its default may fall back to runc. */
export async function runCell(
  s: CellCommandSettings,
  natsUrl: string,
  natsAuth: NatsAuth,
  logger: Logger,
  fleet: FleetOptions = {},
  given: ReadonlySet<string> = new Set(),
): Promise<CellAgent> {
  const cellId = cellIdFrom(s);
  await privateDirs(path.resolve(s.dataDir));
  return startCellAgent({
    natsUrl,
    natsAuth,
    ...fleet,
    cellId,
    stacks: s.stacks,
    rootfs: parseRootfs(s.rootfs),
    workDir: path.resolve(s.dataDir, "cells", cellId),
    runtime: s.runtime,
    runtimeFallback: !given.has("runtime"),
    maxStarting: s.maxStarting,
    memoryMb: s.memoryMb,
    diskMb: s.diskMb,
    containers: s.containers,
    zone: s.zone,
    cellTtlMs: s.cellTtl,
    pidsLimit: s.pidsLimit,
    evacuationTimeoutMs: s.evacuationTimeout,
    crashPolicy: crashPolicyFrom(s),
    dockerRegistry: s.dockerRegistry,
    insecureRegistries: s.insecureRegistries,
    network: {
      cidr: s.networkCidr,
      dnsServers: s.dnsServers,
      hostPorts: s.hostPorts,
      cellAddress: s.cellAddress,
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
