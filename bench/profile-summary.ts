import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

// Reads the V8 CPU profiles (`node --cpu-prof`) in a directory and prints where the time went:
// self time by area of the code (our modules, protobuf, Connect, HTTP/2, NATS client, GC, ...)
// and the hottest functions.

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const AREAS: Array<[string, RegExp]> = [
  ["our store (src/store)", /\/src\/store\//],
  ["our model: validation + JSON (src/model)", /\/src\/model\//],
  ["our API (src/api)", /\/src\/api\//],
  ["generated code (src/gen)", /\/src\/gen\//],
  ["other src/", /\/src\//],
  ["protobuf-es", /@bufbuild\/protobuf/],
  ["Connect", /@connectrpc/],
  ["NATS client", /@nats-io/],
  ["pino", /pino/],
  ["Node HTTP/2", /node:internal\/http2|node:http2/],
  ["Node HTTP/1", /node:_http|node:internal\/http|node:http\b/],
  ["Node streams", /node:internal\/streams|node:stream/],
  ["Node net/timers/other", /^node:/],
];

function area(frame: CallFrame): string {
  if (frame.url === "") {
    if (frame.functionName === "(garbage collector)") return "GC";
    if (frame.functionName === "(idle)") return "idle";
    if (frame.functionName === "(program)") return "V8/native (program)";
    return "native builtins";
  }
  return AREAS.find(([, re]) => re.test(frame.url))?.[0] ?? "other node_modules";
}

export async function summarizeProfiles(dir: string, top = 25): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"));
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(await readFile(path.join(dir, file), "utf8")) as CpuProfile;
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const frame = nodes.get(id)!.callFrame;
      const us = profile.timeDeltas[i] ?? 0;
      total += us;
      byArea.set(area(frame), (byArea.get(area(frame)) ?? 0) + us);
      const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|work\/main)\//, "")}:${frame.lineNumber + 1}` : "";
      const key = `${frame.functionName || "(anonymous)"} ${where}`.trim();
      byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    });
  }
  const busy = total - (byArea.get("idle") ?? 0);
  const pct = (us: number): string => `${((100 * us) / busy).toFixed(1)}%`;
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]);
  return [
    `CPU profile of the receptor (${files.length} file(s)): ${(busy / 1e6).toFixed(1)} s busy, ${((byArea.get("idle") ?? 0) / 1e6).toFixed(1)} s idle.`,
    "",
    "| area (self time) | share of busy time |",
    "|---|---:|",
    ...sorted(byArea)
      .filter(([name]) => name !== "idle")
      .map(([name, us]) => `| ${name} | ${pct(us)} |`),
    "",
    `| hottest functions (self time, top ${top}) | share |`,
    "|---|---:|",
    ...sorted(byFunction)
      .filter(([name]) => !name.startsWith("(idle)"))
      .slice(0, top)
      .map(([name, us]) => `| \`${name}\` | ${pct(us)} |`),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await summarizeProfiles(process.argv[2] ?? "."));
}
