import { chmod, copyFile } from "node:fs/promises";
import path from "node:path";
import type { Sandbox } from "../sandbox/index.js";
import type { ArchiveType } from "./archive-type.js";
import type { ContainerStage } from "./container-stage.js";

// Unpacking happens inside the container, as the action's user, with the staged static busybox
// (tar for tgz/tar, unzip for zip). The kernel then resolves every path within the container's
// root, so a symlink in the image or in the archive can never write to the host, and new files
// belong to the container user (host uid = hostRootUid + uid) without any chown by the cell.

const ARCHIVE_NAME = "archive";

/** Copies the archive into the stage; the cached original may change once this resolves. */
export async function stageArchive(stage: ContainerStage, file: string): Promise<void> {
  const target = path.join(stage.hostDir, ARCHIVE_NAME);
  await copyFile(file, target);
  await chmod(target, 0o644);
}

export interface ExtractOptions {
  sandbox: Sandbox;
  stage: ContainerStage;
  type: ArchiveType;
  /** Destination directory in the container (created when missing). */
  to: string;
  user?: string;
  signal: AbortSignal;
}

export interface ExtractResult {
  exitCode: number;
  stderr: string;
}

export async function extractInContainer(opts: ExtractOptions): Promise<ExtractResult> {
  const busybox = `${opts.stage.containerDir}/busybox`;
  const archive = `${opts.stage.containerDir}/${ARCHIVE_NAME}`;
  const unpack =
    opts.type === "zip"
      ? `"$0" unzip -o -q "$2" -d "$1"`
      : `"$0" tar -x -o ${opts.type === "tgz" ? "-z " : ""}-f "$2" -C "$1"`;
  const stderr: Buffer[] = [];
  let kept = 0;
  const keep = (chunk: Buffer): void => {
    if (kept < 4096) stderr.push(chunk), (kept += chunk.length);
  };
  // One process (sh -c) instead of two saves a runtime invocation per download.
  const result = await opts.sandbox.run(
    {
      path: busybox,
      args: ["sh", "-c", `"$0" mkdir -p "$1" && ${unpack}`, busybox, opts.to || "/", archive],
      env: [],
      dir: "/",
      user: opts.user,
    },
    { stdout: keep, stderr: keep },
    opts.signal,
  );
  return { exitCode: result.exitCode, stderr: Buffer.concat(stderr).toString("utf8").trim() };
}
