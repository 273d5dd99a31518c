import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nft, NftError } from "../../cell-agent/src/network/nft.js";
import { setupNetFixture, type NetFixture } from "./net-fixture.js";
import { listTable, startTestHost, type TestHost } from "./test-host.js";

// Rules that arrive while the nftables helper is busy load together, in one transaction: each
// container must still get exactly its own rules, and one bad script must fail only itself.

const wget = (url: string): string => `timeout 1 wget -q -O - ${url} && echo OK || echo FAILED`;

describe("scripts queued while a transaction runs", () => {
  const table = `diego_t${randomBytes(4).toString("hex")}`;
  afterAll(async () => {
    await nft().run(`delete table inet ${table}\n`).catch(() => undefined);
  });

  it("all load, and a bad one fails alone with its own error", async () => {
    // The first is sent at once; the other four queue behind it and go as one transaction.
    const runs = [
      nft().run(`add table inet ${table}\n`),
      nft().run(`add chain inet ${table} first\n`),
      nft().run(`add chain inet ${table} broken\nadd rule inet ${table} broken tcp dport 70000 accept\n`),
      nft().run(`add chain inet ${table} second\n`),
      nft().run(`delete chain inet ${table} nonexistent\n`),
    ];
    const settled = await Promise.allSettled(runs);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "rejected"]);
    const broken = (settled[2] as PromiseRejectedResult).reason as Error;
    expect(broken).toBeInstanceOf(NftError);
    expect(broken.message).toContain("Service out of range"); // the 70000
    expect((settled[4] as PromiseRejectedResult).reason.message).toContain("nonexistent");
    const listed = listTable("inet", table);
    expect(listed).toContain("chain first");
    expect(listed).toContain("chain second");
    // All or nothing per script: the broken script's chain was not left half made.
    expect(listed).not.toContain("chain broken");
  });
});

describe("containers attached at once", () => {
  let host: TestHost;
  let nf: NetFixture;
  beforeAll(async () => {
    host = await startTestHost(4);
    nf = await setupNetFixture({ cellAddress: host.hostAddress });
  }, 60_000);
  afterAll(async () => {
    host?.stop();
    await nf?.cleanup();
  }, 60_000);

  it("each deny by default and allow only their own rules", async () => {
    const addresses = host.addresses;
    // Four containers' rules (and one without any) load while each other's are loading.
    const containers = await Promise.all([
      ...addresses.map((a) => nf.container({ rules: [{ protocol: "tcp", destinations: [a], ports: [8080] }] })),
      nf.container(),
    ]);
    const outs = await Promise.all(containers.map(async (c) => (await c.sh(addresses.map((a) => wget(`http://${a}:8080/`)).join("; "))).out));
    addresses.forEach((a, i) => {
      const expected = addresses.map((_, j) => (j === i ? "OK" : "FAILED"));
      expect(outs[i]!.match(/OK|FAILED/g), `container allowed ${a}`).toEqual(expected);
      expect(outs[i]).toContain(`hello from ${a}:8080`);
    });
    expect(outs[4]!.match(/OK|FAILED/g), "container without rules").toEqual(addresses.map(() => "FAILED"));
  }, 60_000);
});
