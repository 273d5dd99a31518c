import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, setupNetFixture, type NetFixture } from "./net-fixture.js";
import { startTestHost, vethsWithPrefix, type TestHost } from "./test-host.js";

// Once a cell has started a container it keeps a few network namespaces made ahead; the next
// containers get one of those: it must be wired, firewalled and private like a fresh one.

const wget = (url: string): string => `timeout 1 wget -q -O - ${url} && echo OK || echo FAILED`;

let host: TestHost;
let nf: NetFixture;
let sparesDir: string;

/** The namespaces (nsfs inode numbers) of the spares ready now. */
const spareInodes = (): number[] => readdirSync(sparesDir).map((f) => statSync(path.join(sparesDir, f)).ino);

beforeAll(async () => {
  host = await startTestHost(2);
  nf = await setupNetFixture({ cellAddress: host.hostAddress });
  sparesDir = path.join(nf.workDir, "network", "spares");
}, 60_000);
afterAll(async () => {
  host?.stop();
  await nf?.cleanup();
}, 60_000);

describe("spare network namespaces", () => {
  it("none before the first container; after it, the next containers get them, each its own", async () => {
    expect(readdirSync(sparesDir)).toEqual([]);
    // A container's namespace is made when its first process starts.
    await (await nf.container()).sh("true");
    await eventually("spare namespaces", () => spareInodes().length >= 2);
    const spares = spareInodes();
    const [a, b] = await Promise.all([
      nf.container({ rules: [{ protocol: "tcp", destinations: [host.addresses[0]!], ports: [8080] }] }),
      nf.container({ rules: [{ protocol: "tcp", destinations: [host.addresses[1]!], ports: [8080] }] }),
    ]);
    const urls = host.addresses.map((addr) => wget(`http://${addr}:8080/`)).join("; ");
    const [outA, outB] = await Promise.all([a.sh(urls), b.sh(urls)]);
    const inodes = [a, b].map((c) => statSync(c.net.netnsPath).ino);
    expect(spares).toEqual(expect.arrayContaining(inodes));
    expect(inodes[0]).not.toBe(inodes[1]);
    expect(outA.out.match(/OK|FAILED/g)).toEqual(["OK", "FAILED"]);
    expect(outB.out.match(/OK|FAILED/g)).toEqual(["FAILED", "OK"]);
    const { out } = await a.sh("ip addr show lo; ip addr show eth0; ip route; cat /proc/sys/net/ipv6/conf/all/disable_ipv6");
    expect(out).toContain("127.0.0.1/8");
    expect(out).toContain(`${a.net.address}/32`);
    expect(out).toContain(`default via ${nf.network.gateway}`);
    expect(out.trim().split("\n").at(-1)).toBe("1");
  }, 60_000);

  it("are removed with the cell's network", async () => {
    await eventually("spare namespaces", () => spareInodes().length >= 1);
    expect(vethsWithPrefix(nf.network.names.spareVethPrefix).length).toBe(spareInodes().length);
    await nf.network.close();
    const mounts = readFileSync("/proc/self/mountinfo", "utf8");
    expect(mounts).not.toContain(sparesDir);
    // Their veths go with the namespaces, which the kernel removes in the background.
    await eventually("no spare veths", () => vethsWithPrefix(nf.network.names.spareVethPrefix).length === 0);
  }, 30_000);
});
