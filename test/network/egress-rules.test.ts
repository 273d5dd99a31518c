import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogMessageSchema } from "../../src/gen/diego/v1/internal_pb.js";
import { connectNats, subjects } from "../../src/nats/index.js";
import { startCluster, type TestCluster } from "../fixtures/cluster.js";
import { startTestHost, type TestHost } from "./test-host.js";

// Tasks through the API on a cell with networking: what their security_group_rules let them
// reach on a test host (a namespace of this test's own), and nothing more.

let cluster: TestCluster;
let host: TestHost;
let seq = 0;

beforeAll(async () => {
  host = await startTestHost(4);
  cluster = await startCluster({ cells: [{ network: { cellAddress: host.hostAddress } }] });
}, 60_000);

afterAll(async () => {
  host?.stop();
  await cluster?.stop();
}, 60_000);

type Rule = Record<string, unknown>;
interface Done {
  failed: boolean;
  failure_reason: string;
  result: string;
}

async function runTask(script: string, rules: Rule[] = [], extra: Record<string, unknown> = {}): Promise<Done> {
  const guid = `net-${process.pid}-${++seq}`;
  const res = await cluster.createTask({
    task_guid: guid,
    domain: "net",
    stack: "lucid64",
    action: { run: { path: "/bin/sh", args: ["-c", script] } },
    result_file: "/tmp/out",
    security_group_rules: rules,
    ...extra,
  });
  expect(res.status, await res.text()).toBe(201);
  return (await cluster.waitCompleted(guid, 30_000)) as unknown as Done;
}

// Debian's static busybox wget segfaults with -T: busybox timeout bounds it instead.
// (Not as the last command: sh would exec it as the container's PID 1, which ignores timeout's TERM.)
const fetchTo = (url: string): string => `timeout 2 wget -q -O /tmp/out ${url}; exit $?`;
/** Writes to the result which of the test host's addresses answer on 8080. */
const probeAll = (): string =>
  `for a in ${host.addresses.join(" ")}; do timeout 1 wget -q -O /dev/null http://$a:8080/ && echo -n "$a "; done > /tmp/out; true`;

describe("tcp rules", () => {
  it.each([true, false])("let a task (privileged %s) whose first command connects fetch a page", async (privileged) => {
    const a = host.addresses[0]!;
    const t = await runTask(fetchTo(`http://${a}:8080/`), [{ protocol: "tcp", destinations: [a], ports: [8080] }], { privileged });
    expect(t).toMatchObject({ failed: false, result: `hello from ${a}:8080\n` });
  });

  it("accept the older single destination with a port_range", async () => {
    const a = host.addresses[1]!;
    const t = await runTask(fetchTo(`http://${a}:8080/`), [{ protocol: "tcp", destination: a, port_range: { start: 8000, end: 8080 } }]);
    expect(t).toMatchObject({ failed: false, result: `hello from ${a}:8080\n` });
  });

  it("without the rule the task fails with the tool's exit status, within the tool's timeout", async () => {
    const started = Date.now();
    const t = await runTask(fetchTo(`http://${host.addresses[0]}:8080/`));
    expect(t.failed).toBe(true);
    expect(t.failure_reason).toMatch(/^Exited with status [1-9][0-9]*$/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("a rule for one port does not open another", async () => {
    const a = host.addresses[0]!;
    const t = await runTask(fetchTo(`http://${a}:8081/`), [{ protocol: "tcp", destinations: [a], ports: [8080] }]);
    expect(t.failed).toBe(true);
  });

  it("a CIDR allows exactly its addresses", async () => {
    const [, , c, d] = host.addresses;
    const t = await runTask(probeAll(), [{ protocol: "tcp", destinations: [`${c}/31`], ports: [8080] }]);
    expect(t.result.trim().split(" ")).toEqual([c, d]);
  });

  it("a range allows exactly its addresses", async () => {
    const [, b, c] = host.addresses;
    const t = await runTask(probeAll(), [{ protocol: "tcp", destinations: [`${b}-${c}`], ports: [8080] }]);
    expect(t.result.trim().split(" ")).toEqual([b, c]);
  });
});

describe("udp, icmp and all", () => {
  const udp = (a: string): string => `timeout 2 tftp -g -r hello -l /tmp/out ${a} 5353; true`;
  const ping = (a: string): string => `ping -c 1 -W 1 ${a} > /dev/null && echo -n PING-OK > /tmp/out || echo -n PING-FAILED > /tmp/out`;

  it("udp: a rule for the port gets a file over TFTP; none gets nothing", async () => {
    const a = host.addresses[0]!;
    expect((await runTask(udp(a), [{ protocol: "udp", destinations: [a], ports: [5353] }])).result).toBe(`hello over udp from 0.0.0.0\n`);
    expect((await runTask(udp(a))).failure_reason).toBe("failed to fetch result");
  });

  // busybox ping opens a raw socket: an unprivileged (single-process) task's root must hold
  // CAP_NET_RAW over its network namespace, so that namespace belongs to the task's user namespace.
  it.each([true, false])("icmp (privileged %s): echo requests pass a rule for type 8 and no other", async (privileged) => {
    const a = host.addresses[0]!;
    const icmp = (type: number): Rule[] => [{ protocol: "icmp", destinations: [a], icmp_info: { type, code: 0 } }];
    expect((await runTask(ping(a), icmp(8), { privileged })).result).toBe("PING-OK");
    expect((await runTask(ping(a), icmp(0), { privileged })).result).toBe("PING-FAILED");
    expect((await runTask(ping(a), [], { privileged })).result).toBe("PING-FAILED");
  });

  it("all allows every protocol and port to its destinations, and nothing else", async () => {
    const [a, b] = host.addresses as [string, string];
    const script = [
      `timeout 1 wget -q -O - http://${a}:8080/`,
      `timeout 1 wget -q -O - http://${a}:8081/`,
      `timeout 1 tftp -g -r hello -l /tmp/udp ${a} 5353 && cat /tmp/udp`,
      `ping -c 1 -W 1 ${a} >/dev/null && echo ping-a`,
      `timeout 1 wget -q -O - http://${b}:8080/ || echo no-b`,
    ].join("; ");
    const t = await runTask(`(${script}) > /tmp/out 2>/dev/null; true`, [{ protocol: "all", destinations: [a] }], { privileged: true });
    expect(t.result).toBe(`hello from ${a}:8080\nhello from ${a}:8081\nhello over udp from 0.0.0.0\nping-a\nno-b\n`);
  });
});

describe("log: true", () => {
  it("writes the first packet of each new connection to the task's log stream, under source NETWORK", async () => {
    const a = host.addresses[0]!;
    const logGuid = `net-log-${process.pid}`;
    const nc = await connectNats({ url: cluster.nats.url, name: "net-log-test" });
    const lines: Array<{ source: string; text: string }> = [];
    const sub = nc.subscribe(subjects.logs(logGuid), {
      callback: (_err, msg) => {
        const m = fromBinary(LogMessageSchema, msg.data);
        lines.push({ source: m.sourceName, text: m.message });
      },
    });
    try {
      const get = `timeout 2 wget -q -O /tmp/out http://${a}:8080/`;
      const fetchTwice = `${get} && ${get}; exit $?`;
      const rules = [
        { protocol: "tcp", destinations: [a], ports: [8081] },
        { protocol: "tcp", destinations: [a], ports: [8080], log: true },
      ];
      const t = await runTask(fetchTwice, rules, { log_guid: logGuid });
      expect(t.failed).toBe(false);
      await nc.flush();
      const logged = lines.filter((l) => l.source === "NETWORK");
      // Two connections, one line each (their other packets are not logged).
      expect(logged).toHaveLength(2);
      for (const l of logged) expect(l.text).toMatch(new RegExp(`^rule 1: .*DST=${a.replace(/\./g, "\\.")} .*PROTO=TCP .*DPT=8080 `));
    } finally {
      sub.unsubscribe();
      await nc.drain();
    }
  });
});
