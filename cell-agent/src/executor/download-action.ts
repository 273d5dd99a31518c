import { open, type FileHandle } from "node:fs/promises";
import type { DownloadAction } from "../../../src/gen/diego/v1/actions_pb.js";
import type { ArchiveType } from "./archive-type.js";
import { detectArchiveType } from "./archive-type.js";
import { formatByteSize } from "./byte-size.js";
import { CancelledError, EmittableError } from "./errors.js";
import { extractInContainer } from "./extract-archive.js";
import type { StepContext } from "./types.js";

export const DOWNLOAD_FAILED = "Downloading failed";
export const COPY_IN_FAILED = "Copying into the container failed";

/**
 * download: fetches a .tgz/.tar/.zip over http(s) (through the cell's cache when cache_key is
 * set) and unpacks it into `to` inside the container as the action's user. With `artifact`
 * set it logs "Downloading <a>...", then "Downloaded <a> (<size>)" or "Failed to download <a>".
 */
export async function runDownloadAction(action: DownloadAction, ctx: StepContext): Promise<void> {
  if (ctx.signal.aborted) throw new CancelledError();
  const out = ctx.logs.source(action.logSource || ctx.source);
  const emit = (text: string): void => {
    if (action.artifact) out.line(text);
  };
  emit(`Downloading ${action.artifact}...`);
  const { archive, size, type } = await fetchArchive(action, ctx, () => emit(`Failed to download ${action.artifact}`));
  try {
    emit(`Downloaded ${action.artifact} (${formatByteSize(size)})`);
    await unpack(archive, type, action, ctx);
  } finally {
    await archive.close();
  }
}

/** Fetches the archive and keeps it open: the cache may replace or evict the file once `use` settles. */
async function fetchArchive(
  action: DownloadAction,
  ctx: StepContext,
  onFailure: () => void,
): Promise<{ archive: FileHandle; size: number; type: ArchiveType }> {
  try {
    return await ctx.downloads.fetch({ url: action.from, cacheKey: action.cacheKey, signal: ctx.signal }, async (file) => {
      const type = await detectArchiveType(file.path, action.from);
      if (!type) throw new Error("unknown archive format");
      return { archive: await open(file.path, "r"), size: file.size, type };
    });
  } catch (err) {
    if (ctx.signal.aborted) throw new CancelledError();
    // The URL may carry credentials: it is neither logged to the user nor put in the reason.
    ctx.logger.warn({ err: (err as Error).message }, "download failed");
    onFailure();
    throw new EmittableError(DOWNLOAD_FAILED, { cause: err });
  }
}

async function unpack(archive: FileHandle, type: ArchiveType, action: DownloadAction, ctx: StepContext): Promise<void> {
  let exitCode: number;
  try {
    const result = await extractInContainer({
      sandbox: ctx.sandbox,
      archive,
      type,
      to: action.to,
      user: action.user || ctx.defaultUser || undefined,
      signal: ctx.signal,
    });
    exitCode = result.exitCode;
    if (exitCode !== 0) ctx.logger.warn({ exitCode, stderr: result.stderr, to: action.to }, "unpacking failed");
  } catch (err) {
    if (ctx.signal.aborted) throw new CancelledError();
    ctx.logger.warn({ err }, "unpacking failed");
    throw new EmittableError(COPY_IN_FAILED, { cause: err });
  }
  if (ctx.signal.aborted) throw new CancelledError();
  if (exitCode !== 0) throw new EmittableError(COPY_IN_FAILED);
}
