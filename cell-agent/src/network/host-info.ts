import { readFileSync } from "node:fs";
import os from "node:os";
import { parseIpv4 } from "../../../src/model/index.js";

// What the cell reads of the machine's network: its IPv4 routes, the address of the interface
// the default route uses, and its DNS resolvers.

export interface Route {
  iface: string;
  /** Network address and prefix length. */
  base: number;
  prefix: number;
}

/** IPv4 routes of the main table (/proc/net/route: hex, little-endian). */
export function hostRoutes(): Route[] {
  const lines = readFileSync("/proc/net/route", "utf8").trim().split("\n").slice(1);
  return lines.map((line) => {
    const f = line.trim().split(/\s+/);
    const base = leHex(f[1]!);
    const mask = leHex(f[7]!);
    return { iface: f[0]!, base, prefix: 32 - Math.log2(2 ** 32 - mask) };
  });
}

function leHex(hex: string): number {
  return Buffer.from(hex, "hex").readUInt32LE(0);
}

/** The IPv4 address of the default route's interface, if there is one. */
export function defaultRouteAddress(): string | undefined {
  const route = hostRoutes().find((r) => r.prefix === 0);
  if (!route) return undefined;
  return os.networkInterfaces()[route.iface]?.find((a) => a.family === "IPv4")?.address;
}

/** Nameservers of /etc/resolv.conf that a container could reach (not the host's loopback). */
export function hostDnsServers(): string[] {
  let text = "";
  try {
    text = readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined && parseIpv4(s) !== undefined && !s.startsWith("127."));
}
