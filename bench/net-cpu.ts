// CPU per container network made and released, one at a time: this process (the cell's main
// thread), the nftables helper and the kernel's workers (which tear namespaces down; others'
// work on the machine counts there too). Run: npx tsx bench/net-cpu.ts (N=60, RULES=0, NS=0).
import pino from "pino";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startCellNetwork } from "../cell-agent/src/network/index.js";
const N = Number(process.env.N ?? 40);
const ticks = (pid: string): number => { try { const s = readFileSync(`/proc/${pid}/stat`, "utf8"); const f = s.slice(s.lastIndexOf(")") + 2).split(" "); return Number(f[11]) + Number(f[12]); } catch { return 0; } };
const comm = (pid: string): string => { try { return readFileSync(`/proc/${pid}/comm`, "utf8").trim(); } catch { return ""; } };
const kworkers = (): number => readdirSync("/proc").filter((p) => /^\d+$/.test(p) && comm(p).startsWith("kworker")).reduce((a, p) => a + ticks(p), 0);
const children = (): string[] => readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
const dir = mkdtempSync(path.join(os.tmpdir(), "netcpu-"));
const net = await startCellNetwork({ workDir: dir, logger: pino({ level: "silent" }) });
const rules = process.env.RULES === "0" ? [] : Array.from({ length: 10 }, (_, i) => ({ $typeName: "diego.v1.SecurityGroupRule" as const, protocol: "tcp", destination: "", destinations: [`203.0.113.${i}`], ports: [443], log: false }));
const helper = children()[0]!;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const k0 = kworkers(), h0 = ticks(helper), c0 = cpu(), w0 = performance.now();
for (let i = 0; i < N; i++) {
  const n = await net.attach({ id: `s${i}`, rules });
  if (process.env.NS !== "0") await n.namespaceFiles();
  await n.release();
}
const wall = performance.now() - w0, c1 = cpu();
await new Promise((r) => setTimeout(r, 3000)); // the kernel tears the namespaces down meanwhile
const perN = (x: number) => (x / N).toFixed(2);
console.log(`per container: wall ${perN(wall)} ms, cell ${perN(c1 - c0)} ms, nft helper ${perN((ticks(helper) - h0) * 10)} ms, kworkers ${perN((kworkers() - k0) * 10)} ms (incl. others')`);
await net.close();
rmSync(dir, { recursive: true, force: true });
