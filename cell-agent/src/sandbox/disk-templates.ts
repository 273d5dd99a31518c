import { randomBytes } from "node:crypto";
import { mkdir, open, rm, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { runChecked } from "./command.js";
import { hostHelper } from "./host-helper.js";

// disk_mb is enforced with a sparse ext4 image per container, loop-mounted below the overlay's
// upper dir (overlayfs has no quota of its own; a sized tmpfs would charge the files to the
// writer's memory cgroup, so a task's disk would eat its memory limit and OOM instead of ENOSPC).
// mkfs costs 10-20 ms (an exec and a few hundred KB of writes), so each size is formatted once;
// its data extents (found with SEEK_DATA/SEEK_HOLE) are kept in memory and written into each new
// sparse file: well under a millisecond, no exec. Identical ext4 UUIDs are harmless for loop mounts.

export interface DiskTemplate {
  sizeBytes: number;
  chunks: { offset: number; data: Buffer }[];
}

export interface DiskTemplates {
  /** The formatted, empty ext4 image of sizeMb, built on first use. */
  templateFor(sizeMb: number): Promise<DiskTemplate>;
}

export function createDiskTemplates(dir: string): DiskTemplates {
  const built = new Map<number, Promise<DiskTemplate>>();
  return {
    templateFor(sizeMb) {
      let pending = built.get(sizeMb);
      if (!pending) {
        pending = buildTemplate(dir, sizeMb);
        pending.catch(() => built.delete(sizeMb));
        built.set(sizeMb, pending);
      }
      return pending;
    },
  };
}

/** Writes a copy of template as a new sparse file at image. */
export async function writeDiskImage(image: string, template: DiskTemplate): Promise<void> {
  const fh = await open(image, "wx", 0o600);
  try {
    await fh.truncate(template.sizeBytes);
    for (const c of template.chunks) await fh.write(c.data, 0, c.data.length, c.offset);
  } finally {
    await fh.close();
  }
}

async function buildTemplate(dir: string, sizeMb: number): Promise<DiskTemplate> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `ext4-${sizeMb}m-${process.pid}-${randomBytes(4).toString("hex")}.img`);
  try {
    const sizeBytes = sizeMb * 1024 * 1024;
    await writeFile(file, "");
    await truncate(file, sizeBytes);
    // No journal (the data dies with the container), no reserved blocks (all of disk_mb is usable).
    await runChecked("mkfs.ext4", ["-q", "-F", "-O", "^has_journal", "-m", "0", "-E", "nodiscard,lazy_itable_init=1", file]);
    const extents = await hostHelper().extents(file);
    const fh = await open(file, "r");
    try {
      const chunks = [];
      for (const e of extents) {
        const data = Buffer.alloc(e.length);
        await fh.read(data, 0, e.length, e.offset);
        chunks.push({ offset: e.offset, data });
      }
      return { sizeBytes, chunks };
    } finally {
      await fh.close();
    }
  } finally {
    await rm(file, { force: true });
  }
}
