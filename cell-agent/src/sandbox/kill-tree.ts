import { readFile } from "node:fs/promises";

/**
 * SIGKILLs pid and every descendant of it among candidates (the container's processes), so
 * killing `sh -c "sleep 100"` also stops the sleep. Processes already gone are ignored.
 */
export async function killTree(pid: number, candidates: number[]): Promise<void> {
  const parentOf = new Map<number, number>();
  await Promise.all(
    candidates.map(async (p) => {
      const ppid = await readPpid(p);
      if (ppid !== undefined) parentOf.set(p, ppid);
    }),
  );
  const doomed = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [child, parent] of parentOf) {
      if (!doomed.has(child) && doomed.has(parent)) {
        doomed.add(child);
        grew = true;
      }
    }
  }
  for (const p of doomed) killQuietly(p);
}

export function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

async function readPpid(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parens: fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[1]);
  } catch {
    return undefined;
  }
}
