// CPU and wall time of one container's network, step by step, in this process (no cell):
// attach (lease + one nft transaction with 10 rules), wiring (namespace, veth, address, route),
// release. Run: npx tsx bench/network-steps.ts
import pino from "pino";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startCellNetwork } from "../cell-agent/src/network/index.js";
const dir = mkdtempSync(path.join(os.tmpdir(), "netsteps-"));
const net = await startCellNetwork({ workDir: dir, logger: pino({ level: "silent" }) });
const rules = Array.from({ length: 10 }, (_, i) => ({ $typeName: "diego.v1.SecurityGroupRule" as const, protocol: "tcp", destination: "", destinations: [`203.0.113.${i}`], ports: [443], log: false }));
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const rows: Record<string, number[]> = { attachWall: [], attachCpu: [], wireWall: [], wireCpu: [], releaseWall: [], releaseCpu: [] };
for (let i = 0; i < 40; i++) {
  let w = performance.now(), c = cpu();
  const n = await net.attach({ id: `s${i}`, rules });
  rows.attachWall.push(performance.now() - w); rows.attachCpu.push(cpu() - c);
  w = performance.now(); c = cpu();
  await n.namespaceFiles();
  rows.wireWall.push(performance.now() - w); rows.wireCpu.push(cpu() - c);
  w = performance.now(); c = cpu();
  await n.release();
  rows.releaseWall.push(performance.now() - w); rows.releaseCpu.push(cpu() - c);
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(2);
for (const [k, v] of Object.entries(rows)) console.log(k, "median", med(v), "ms");
await net.close();
rmSync(dir, { recursive: true, force: true });
