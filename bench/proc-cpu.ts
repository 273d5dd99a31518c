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
