import type { FileHandle } from "node:fs/promises";
import { HIDDEN_BUSYBOX, type Sandbox } from "../sandbox/index.js";
import type { ArchiveType } from "./archive-type.js";

// Unpacking happens inside the container, as the action's user, with the host's static busybox
// that every multi-process container has bind-mounted read-only at /.diego/busybox. The archive
// is streamed in over the process's stdin: the cell writes nothing under the container's root
// and removes nothing there, so no path the container could swap for a symlink is ever used on
// the host. The kernel resolves every path of the unpacking within the container's root, and
// new files belong to the container user without any chown by the cell.

export interface ExtractOptions {
  sandbox: Sandbox;
  /** The downloaded archive, open on the host (the cache may replace the file meanwhile). */
  archive: FileHandle;
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

// "$0" is busybox, "$1" the destination. tar reads stdin as it comes; unzip needs to seek, so
// the container user first writes the zip to a temporary file in the destination.
const SCRIPTS: Record<ArchiveType, string> = {
  tgz: `"$0" mkdir -p "$1" && exec "$0" tar -x -o -z -f - -C "$1"`,
  tar: `"$0" mkdir -p "$1" && exec "$0" tar -x -o -f - -C "$1"`,
  zip:
    `"$0" mkdir -p "$1" && f=$("$0" mktemp "$1/.diego-zip-XXXXXX") || exit 1; ` +
    `"$0" cat > "$f" && "$0" unzip -o -q "$f" -d "$1"; rc=$?; "$0" rm -f "$f"; exit $rc`,
};

export async function extractInContainer(opts: ExtractOptions): Promise<ExtractResult> {
  const stderr: Buffer[] = [];
  let kept = 0;
  const keep = (chunk: Buffer): void => {
    if (kept < 4096) stderr.push(chunk), (kept += chunk.length);
  };
  const result = await opts.sandbox.run(
    {
      path: HIDDEN_BUSYBOX,
      args: ["sh", "-c", SCRIPTS[opts.type], HIDDEN_BUSYBOX, opts.to || "/"],
      env: [],
      dir: "/",
      user: opts.user,
    },
    { stdout: keep, stderr: keep, stdin: opts.archive.createReadStream({ start: 0, autoClose: false }) },
    opts.signal,
  );
  return { exitCode: result.exitCode, stderr: Buffer.concat(stderr).toString("utf8").trim() };
}
