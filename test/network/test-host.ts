// A test host: a network namespace the test makes, joined to this machine by a veth pair, with
// several addresses and a small server in it (HTTP on 8080 and 8081 answering with the address
// asked, TFTP on udp 5353). The only hosts the network tests send traffic to, besides loopback.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { clashingRoutes } from "../../cell-agent/src/network/address-pool.js";
import { hostRoutes } from "../../cell-agent/src/network/host-info.js";
import { formatIpv4, parseIpv4 } from "../../src/model/validate-rules.js";

export interface TestHost {
  /** This machine's end of the link (a local address of the host). */
  hostAddress: string;
  /** The test host's addresses, in order (.2, .3, ...). */
  addresses: string[];
  stop(): void;
}

const SERVER = `
const http = require("node:http"), dgram = require("node:dgram");
let up = 0; const ready = () => { if (++up === 3) console.log("ready"); };
for (const port of [8080, 8081]) http.createServer((q, s) => s.end("hello from " + q.socket.localAddress + ":" + port + "\\n")).listen(port, "0.0.0.0", ready);
// A TFTP server of one file (busybox has no UDP nc): a read request gets one DATA block.
const u = dgram.createSocket("udp4");
u.on("message", (m, r) => {
  if (m.readUInt16BE(0) !== 1) return;
  const body = Buffer.from("hello over udp from " + u.address().address + "\\n");
  u.send(Buffer.concat([Buffer.from([0, 3, 0, 1]), body]), r.port, r.address);
});
u.bind(5353, "0.0.0.0", ready);
`;

const ip = (...args: string[]): string => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

/** A /27 of 10.250.0.0/16 that no route of the machine uses. */
function freeSubnet(): number {
  const routes = hostRoutes();
  for (;;) {
    const aligned = parseIpv4("10.250.0.0")! + (randomBytes(2).readUInt16BE(0) & 0xffe0);
    if (clashingRoutes({ base: aligned, prefix: 27 }, routes).length === 0) return aligned;
  }
}

export async function startTestHost(count = 4): Promise<TestHost> {
  const tag = randomBytes(4).toString("hex");
  const ns = `dtest-${tag}`;
  const veth = `dth${tag}`;
  const base = freeSubnet();
  const hostAddress = formatIpv4(base + 1);
  const addresses = Array.from({ length: count }, (_, i) => formatIpv4(base + 2 + i));
  let server: ChildProcess | undefined;
  const stop = (): void => {
    server?.kill("SIGKILL");
    for (const args of [["netns", "del", ns], ["link", "del", veth]]) {
      try {
        ip(...args);
      } catch {
        /* gone already (the veth goes with the namespace) */
      }
    }
  };
  try {
    ip("netns", "add", ns);
    configure(ns, veth, hostAddress, addresses);
    server = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", SERVER], { stdio: ["ignore", "pipe", "inherit"] });
    await listening(server);
  } catch (err) {
    stop(); // a failed start leaves no namespace behind
    throw err;
  }
  return { hostAddress, addresses, stop };
}

function configure(ns: string, veth: string, hostAddress: string, addresses: string[]): void {
  ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
  ip("addr", "add", `${hostAddress}/27`, "dev", veth);
  ip("link", "set", veth, "up");
  ip("-n", ns, "link", "set", "lo", "up");
  for (const a of addresses) ip("-n", ns, "addr", "add", `${a}/27`, "dev", "eth0");
  ip("-n", ns, "link", "set", "eth0", "up");
  ip("-n", ns, "route", "add", "default", "via", hostAddress);
}

function listening(server: ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.stdout!.on("data", (c: Buffer) => c.toString().includes("ready") && resolve());
    server.once("exit", (code) => reject(new Error(`test host server exited with ${code}`)));
  });
}

/** Host-side veths of a cell (names start with its prefix). */
export function vethsWithPrefix(prefix: string): string[] {
  return readdirSync("/sys/class/net").filter((n) => n.startsWith(prefix));
}

/** Chains, maps and sets of a cell's inet table ("" when the table is gone). */
export function listTable(family: "inet" | "bridge", table: string): string {
  try {
    return execFileSync("nft", ["list", "table", family, table], { stdio: ["ignore", "pipe", "pipe"] }).toString();
  } catch {
    return "";
  }
}
