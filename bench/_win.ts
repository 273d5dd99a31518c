import { readdirSync, readFileSync } from "node:fs";
const dir = "/tmp/exp/fprof";
for (const f of readdirSync(dir)) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, "utf8"));
  const nodes = new Map<number, any>(p.nodes.map((n: any) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inList = (id: number): boolean => { for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) if (/jsonBytes|listJson/.test(nodes.get(x).callFrame.functionName)) return true; return false; };
  let t = 0; const times: number[] = [];
  p.timeDeltas.forEach((d: number) => { t += d; times.push(t); });
  let first = -1, last = -1;
  p.samples.forEach((id: number, i: number) => { if (inList(id)) { if (first < 0) first = i; last = i; } });
  if (first < 0) continue;
  console.log(f, "list window ms", ((times[last] - times[first]) / 1000).toFixed(0));
  const by = new Map<string, number>(); let total = 0;
  for (let i = first; i <= last; i++) { const dt = (times[i + 1] ?? times[i]) - times[i]; const fr = nodes.get(p.samples[i]).callFrame; const k = `${fr.functionName} ${fr.url.split("/").slice(-2).join("/")}:${fr.lineNumber}`; by.set(k, (by.get(k) ?? 0) + dt); total += dt; }
  [...by].sort((a, b) => b[1] - a[1]).slice(0, 25).forEach(([k, v]) => console.log((v / 1000).toFixed(0).padStart(6), "ms", k));
}
