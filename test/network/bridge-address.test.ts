import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { bridgeMac } from "../../cell-agent/src/network/cell-network.js";
import { eventually, setupNetFixture, type NetFixture } from "./net-fixture.js";
import { startTestHost, vethsWithPrefix, type TestHost } from "./test-host.js";

// The bridge (the containers' gateway) keeps one address. Left to the kernel it takes the lowest
// address of its ports; when that port's container goes, containers that cached it lose their
// gateway, and with it their published ports, until their ARP entry expires (~30 s).

let nf: NetFixture;
let host: TestHost;

beforeAll(async () => {
  host = await startTestHost(1);
  nf = await setupNetFixture({ cellAddress: host.hostAddress });
}, 60_000);

afterAll(async () => {
  host?.stop();
  await nf?.cleanup();
}, 60_000);

it("stays the same when a container with a lower port address comes and goes; the others keep their published ports", async () => {
  const expected = [...bridgeMac(nf.network.names)].map((b) => b.toString(16).padStart(2, "0")).join(":");
  const address = (): string => readFileSync(`/sys/class/net/${nf.network.bridge}/address`, "utf8").trim();
  expect(address()).toBe(expected);

  const a = await nf.container({ ports: [8080] });
  await a.sh("mkdir -p /www && echo served by a > /www/index.html");
  const before = new Set(vethsWithPrefix(nf.network.names.vethPrefix));
  const b = await nf.container();
  await b.sh("true");
  const bVeth = vethsWithPrefix(nf.network.names.vethPrefix).find((v) => !before.has(v))!;
  // The lowest unicast address there is: the kernel would make it the bridge's.
  execFileSync("ip", ["link", "set", "dev", bVeth, "address", "02:00:00:00:00:01"]);
  expect(address()).toBe(expected);

  // a talks to the gateway (answering the host) only now, so it caches the bridge's address now.
  void a.sandbox.run({ path: "/bin/busybox", args: ["httpd", "-f", "-p", "8080", "-h", "/www"], env: [] }, { stdout: () => undefined, stderr: () => undefined });
  const url = `http://${nf.network.cellAddress}:${a.net.ports[0]!.hostPort}/`;
  await eventually("a's httpd", async () => (await fetch(url, { signal: AbortSignal.timeout(500) }).catch(() => undefined))?.ok === true);

  await b.sandbox.destroy();
  await b.net.release();
  await eventually("b's veth gone", () => !vethsWithPrefix(nf.network.names.vethPrefix).includes(bVeth));
  expect(address()).toBe(expected);
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  expect(await res.text()).toBe("served by a\n");
});
