import { randomBytes } from "node:crypto";
import { chmod, lchown, lstat, readdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { runChecked } from "./command.js";
import { pathExists } from "./path-exists.js";
import { isCode } from "./errors.js";

// In a user namespace, files owned by host uid 0 show up as "nobody". So an unprivileged
// container gets a copy of each layer with every uid/gid moved up by uidBase, built once,
// kept next to the layer and published with an atomic rename (concurrent builders race
// harmlessly: the loser throws its copy away).

const MAPPED_IDS = 65536;
const inFlight = new Map<string, Promise<string>>();

/** Where the shifted copy of layer for uidBase lives. */
export function shiftedLayerPath(layer: string, uidBase: number): string {
  const clean = path.resolve(layer);
  return path.join(path.dirname(clean), `.${path.basename(clean)}.uidshift-${uidBase}`);
}

/** Returns the path of layer's uid-shifted copy, building it if needed. */
export async function ensureShiftedLayer(layer: string, uidBase: number): Promise<string> {
  const target = shiftedLayerPath(layer, uidBase);
  if (await pathExists(target)) return target;
  let pending = inFlight.get(target);
  if (!pending) {
    pending = buildShifted(path.resolve(layer), target, uidBase).finally(() => inFlight.delete(target));
    inFlight.set(target, pending);
  }
  return pending;
}

async function buildShifted(layer: string, target: string, uidBase: number): Promise<string> {
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await runChecked("cp", ["-a", "--reflink=auto", layer, tmp]);
    await shiftTree(tmp, uidBase);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // Another process published the same copy first: use theirs.
    if ((isCode(err, "ENOTEMPTY") || isCode(err, "EEXIST")) && (await pathExists(target))) return target;
    throw err;
  }
  return target;
}

/** Adds uidBase to the owner and group of every entry below (and including) root. */
export async function shiftTree(root: string, uidBase: number): Promise<void> {
  const queue = [root];
  while (queue.length > 0) {
    const batch = queue.splice(0, 64);
    await Promise.all(
      batch.map(async (p) => {
        const st = await lstat(p);
        await lchown(p, shift(st.uid, uidBase), shift(st.gid, uidBase));
        // chown clears setuid/setgid on files; put the mode back.
        if (!st.isSymbolicLink() && !st.isDirectory() && (st.mode & 0o6000) !== 0) await chmod(p, st.mode & 0o7777);
        if (st.isDirectory()) {
          for (const name of await readdir(p)) queue.push(path.join(p, name));
        }
      }),
    );
  }
}

function shift(id: number, base: number): number {
  // Ids outside the mapped range stay unmapped either way; leave them alone.
  return id < MAPPED_IDS ? id + base : id;
}
