import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, setupNetFixture, type NetContainer, type NetFixture } from "./net-fixture.js";
import { sendUdpFrame } from "./raw-frame.js";
import { startTestHost, type TestHost } from "./test-host.js";

// Containers with their network namespace, sandbox by sandbox: what one may reach without and
// with rules, published ports, unprivileged containers.

let nf: NetFixture;
let host: TestHost;
let hostServer: Server;
let hostPort: number;
let server: NetContainer;

// Debian's static busybox wget segfaults with -T: busybox timeout bounds it instead.
const wget = (url: string): string => `timeout 1 wget -q -O - ${url} && echo OK || echo FAILED`;

beforeAll(async () => {
  host = await startTestHost(1);
  nf = await setupNetFixture({ cellAddress: host.hostAddress });
  hostServer = createServer((_q, s) => s.end("host server\n"));
  await new Promise<void>((r) => hostServer.listen(0, "0.0.0.0", r));
  hostPort = (hostServer.address() as AddressInfo).port;
  server = await nf.container({ ports: [8080] });
  await server.sh("mkdir -p /www && echo served by a container > /www/index.html");
  void server.sandbox.run({ path: "/bin/busybox", args: ["httpd", "-f", "-p", "8080", "-h", "/www"], env: [] }, { stdout: () => undefined, stderr: () => undefined });
  // The cell (the host) reaches containers directly: wait for the server to listen.
  await eventually("the container's httpd", async () => (await fetch(`http://${server.net.address}:8080/`).catch(() => undefined))?.ok === true);
}, 60_000);

afterAll(async () => {
  host?.stop();
  hostServer?.close();
  await nf?.cleanup();
}, 60_000);

describe("a container without rules", () => {
  it("reaches neither another container, nor the bridge address, nor a server on the host, nor a test host", async () => {
    const c = await nf.container();
    const targets = [
      `http://${server.net.address}:8080/`,
      `http://${nf.network.gateway}:${hostPort}/`,
      `http://${host.hostAddress}:${hostPort}/`,
      `http://${host.addresses[0]}:8080/`,
    ];
    const { out } = await c.sh(targets.map(wget).join("; "));
    expect(out.match(/OK|FAILED/g)).toEqual(["FAILED", "FAILED", "FAILED", "FAILED"]);
  });

  it("still has loopback, its address and a default route through the cell", async () => {
    const c = await nf.container();
    const { out } = await c.sh("ip addr show lo; ip addr show eth0; ip route; cat /etc/resolv.conf");
    expect(out).toContain("127.0.0.1/8");
    expect(out).toContain(`${c.net.address}/32`);
    expect(out).toContain(`default via ${nf.network.gateway}`);
  });
});

describe("a container with rules naming them", () => {
  it("reaches exactly what they name", async () => {
    const c = await nf.container({
      rules: [
        { protocol: "tcp", destinations: [server.net.address], ports: [8080] },
        { protocol: "tcp", destinations: [nf.network.gateway], ports: [hostPort] },
        { protocol: "tcp", destinations: [host.addresses[0]!], portRange: { $typeName: "diego.v1.PortRange", start: 8080, end: 8080 } },
      ],
    });
    const { out } = await c.sh(
      [
        wget(`http://${server.net.address}:8080/`),
        wget(`http://${nf.network.gateway}:${hostPort}/`),
        wget(`http://${host.addresses[0]}:8080/`),
        wget(`http://${host.addresses[0]}:8081/`),
        wget(`http://${host.hostAddress}:${hostPort}/`),
      ].join("; "),
    );
    expect(out).toContain("served by a container");
    expect(out).toContain("host server");
    expect(out).toContain(`hello from ${host.addresses[0]}:8080`);
    expect(out.match(/OK|FAILED/g)).toEqual(["OK", "OK", "OK", "FAILED", "FAILED"]);
  });

  it("applies to unprivileged (user namespace) containers too, ping included", async () => {
    const c = await nf.container({
      privileged: false,
      rules: [
        { protocol: "tcp", destinations: [host.addresses[0]!], ports: [8080] },
        { protocol: "icmp", destinations: [host.addresses[0]!], icmpInfo: { $typeName: "diego.v1.IcmpInfo", type: 8, code: 0 } },
      ],
    });
    const { out } = await c.sh(`${wget(`http://${host.addresses[0]}:8080/`)}; ping -c 1 -W 1 ${host.addresses[0]} >/dev/null && echo PING-OK || echo PING-FAILED; ping -c 1 -W 1 ${host.hostAddress} >/dev/null && echo PING-OK || echo PING-FAILED`);
    expect(out).toContain(`hello from ${host.addresses[0]}:8080`);
    expect(out.match(/OK|FAILED/g)).toEqual(["OK", "OK", "FAILED"]);
  });
});

describe("published ports", () => {
  it("reach a container's port at the cell address and a host port from the range, until it is gone", async () => {
    expect(server.net.ports).toEqual([{ containerPort: 8080, hostPort: expect.any(Number) }]);
    const { hostPort: published } = server.net.ports[0]!;
    expect(published).toBeGreaterThanOrEqual(61000);
    expect(published).toBeLessThanOrEqual(61999);
    const res = await fetch(`http://${nf.network.cellAddress}:${published}/`);
    expect(await res.text()).toBe("served by a container\n");
    // From the cell's machine itself, at loopback too.
    const local = await fetch(`http://127.0.0.1:${published}/`);
    expect(await local.text()).toBe("served by a container\n");
    const portsDir = path.join(nf.workDir, "network", "ports");
    expect(await readdir(portsDir)).toContain(String(published));

    await server.sandbox.destroy();
    await server.net.release();
    expect(await readdir(portsDir)).not.toContain(String(published));
    await expect(fetch(`http://${nf.network.cellAddress}:${published}/`, { signal: AbortSignal.timeout(1500) })).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${published}/`, { signal: AbortSignal.timeout(1500) })).rejects.toThrow();
  });
});

describe("the machine's loopback", () => {
  // The bridge has route_localnet (for published ports at 127.0.0.1), which would route frames
  // a container makes by hand to 127.0.0.1 into the machine's loopback services (CVE-2020-8558).
  it("is out of reach of hand-made frames to 127.0.0.1, even with a rule naming it", async () => {
    const listen = async (address: string): Promise<{ port: number; got: string[]; next: Promise<string>; close(): void }> => {
      const sock = createSocket("udp4");
      const got: string[] = [];
      const next = new Promise<string>((resolve) => sock.on("message", (m) => (got.push(m.toString()), resolve(m.toString()))));
      await new Promise<void>((r) => sock.bind(0, address, r));
      return { port: sock.address().port, got, next, close: () => sock.close() };
    };
    const loopback = await listen("127.0.0.1");
    const bridge = await listen(nf.network.gateway);
    try {
      const c = await nf.container({
        privileged: true, // CAP_NET_RAW, and a namespace the test may enter
        rules: [{ protocol: "udp", destinations: ["127.0.0.1", nf.network.gateway], ports: [loopback.port, bridge.port] }],
      });
      await c.sh("true"); // the namespace is made for the first process
      const frame = { netns: c.net.netnsPath, bridge: nf.network.bridge, src: c.net.address };
      sendUdpFrame({ ...frame, dst: "127.0.0.1", dstPort: loopback.port, payload: "to loopback" });
      // The same kind of frame to the bridge address (which the rule allows) arrives, after it.
      sendUdpFrame({ ...frame, dst: nf.network.gateway, dstPort: bridge.port, payload: "to the bridge" });
      expect(await bridge.next).toBe("to the bridge");
      expect(loopback.got).toEqual([]);
    } finally {
      loopback.close();
      bridge.close();
    }
  });
});
