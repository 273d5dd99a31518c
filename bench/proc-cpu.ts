import { readFileSync } from "node:fs";

// CPU seconds a process has used so far (user + system), from /proc: with client, receptor and
// nats-server sharing two cores, where the CPU goes matters as much as the rates.

const TICKS_PER_SECOND = 100;

export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

export interface CpuMeter {
  /** CPU seconds per named process since the meter was created. */
  read(): Record<string, number>;
}

export function meterCpu(pids: Record<string, number>): CpuMeter {
  const start = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  return {
    read: () => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) - start[name]!])),
  };
}

/**
 * The share of the machine's CPU time the hypervisor gave to other guests (steal, from
 * /proc/stat) since the meter was created: on a shared VM it explains runs that differ by 2×.
 */
export function meterSteal(): { read(): number } {
  const sample = (): { steal: number; total: number } => {
    try {
      const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
      return { steal: fields[7] ?? 0, total: fields.reduce((a, b) => a + b, 0) };
    } catch {
      return { steal: 0, total: 0 };
    }
  };
  const start = sample();
  return {
    read() {
      const now = sample();
      const total = now.total - start.total;
      return total > 0 ? (now.steal - start.steal) / total : 0;
    },
  };
}
