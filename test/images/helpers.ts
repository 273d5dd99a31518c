import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export const run = promisify(execFile);

/** Temp directories removed by cleanup() (unmounting anything mounted first). */
export function createTempDirs() {
  const dirs: string[] = [];
  const mounts: string[] = [];
  return {
    async make(prefix = "images-"): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    /** Mounts layers (lowest first) read-only as overlay lowerdirs; returns the merged dir. */
    async mountOverlay(layers: string[]): Promise<string> {
      const target = await this.make("overlay-");
      await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${[...layers].reverse().join(":")}`, target]);
      mounts.push(target);
      return target;
    },
    async remove(path: string): Promise<void> {
      await rm(path, { recursive: true, force: true });
    },
    async cleanup(): Promise<void> {
      for (const mount of mounts.splice(0)) await run("umount", [mount]);
      for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The manifest the registry holds for repo:reference, read directly (to learn blob digests). */
export async function manifestOf(
  registry: string,
  repo: string,
  reference: string,
): Promise<{ config: { digest: string }; layers: Array<{ digest: string }> }> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${reference}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  if (!res.ok) throw new Error(`manifest ${repo}:${reference} answered ${res.status}`);
  return (await res.json()) as { config: { digest: string }; layers: Array<{ digest: string }> };
}

/** Runs `fn` and returns what it threw (failing if it did not throw) and how long it took. */
export async function caught(fn: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await fn();
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error("expected a failure, but it succeeded");
}
