import { execFile } from "node:child_process";
import { readdir, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { ImagePullError } from "./errors.js";

const run = promisify(execFile);
const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";
const META = ".wh..wh."; // AUFS bookkeeping (.wh..wh.plnk etc.): meaningless to overlayfs.
const SETFATTR_BATCH = 64;

/**
 * Rewrites OCI whiteouts in an extracted layer into overlayfs form so layers stack directly as
 * lowerdirs: `.wh.<name>` becomes a 0:0 character device `<name>`, and `.wh..wh..opq` becomes
 * `trusted.overlay.opaque=y` on its directory. Never follows symlinks: only real directories are walked.
 */
export async function convertWhiteouts(root: string, digest: string): Promise<void> {
  const opaqueDirs: string[] = [];
  try {
    await walk(root, opaqueDirs);
    for (let i = 0; i < opaqueDirs.length; i += SETFATTR_BATCH) {
      const batch = opaqueDirs.slice(i, i + SETFATTR_BATCH);
      await run("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", "--", ...batch]);
    }
  } catch (err) {
    const detail = isMissing(err, "setfattr")
      ? "setfattr not found (install the Debian package attr)"
      : err instanceof Error
        ? err.message
        : String(err);
    throw new ImagePullError("extract-failed", `failed to convert whiteouts in layer ${digest}: ${detail}`, {
      cause: err,
    });
  }
}

function isMissing(err: unknown, tool: string): boolean {
  const { code, path } = err as { code?: string; path?: string };
  return code === "ENOENT" && path === tool;
}

async function walk(dir: string, opaqueDirs: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = new Set(entries.map((e) => e.name));
  const hidden = new Set(entries.filter((e) => isWhiteout(e.name)).map((e) => e.name.slice(WHITEOUT.length)));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.name === OPAQUE) {
      await unlink(path);
      opaqueDirs.push(dir);
    } else if (entry.name.startsWith(META)) {
      await rm(path, { recursive: true, force: true });
    } else if (isWhiteout(entry.name)) {
      const name = entry.name.slice(WHITEOUT.length);
      await unlink(path);
      // ".wh.", ".wh.." and ".wh..." name nothing a layer could delete.
      if (name !== "" && name !== "." && name !== "..") await whiteout(dir, name, names.has(name));
    } else if (entry.isDirectory() && !hidden.has(entry.name)) {
      await walk(path, opaqueDirs);
    }
  }
}

function isWhiteout(name: string): boolean {
  return name.startsWith(WHITEOUT) && !name.startsWith(META);
}

async function whiteout(dir: string, name: string, exists: boolean): Promise<void> {
  const target = join(dir, name);
  // A layer should not carry both, but if it does the whiteout wins (it is what the image author deleted).
  if (exists) await rm(target, { recursive: true, force: true });
  await run("mknod", ["-m", "0", target, "c", "0", "0"]);
}
