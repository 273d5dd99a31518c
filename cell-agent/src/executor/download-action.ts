import type { DownloadAction } from "../../../src/gen/diego/v1/actions_pb.js";
import type { LogSourceWriter } from "../logs/index.js";
import type { ArchiveType } from "./archive-type.js";
import { detectArchiveType } from "./archive-type.js";
import { formatByteSize } from "./byte-size.js";
import { createContainerStage, type ContainerStage } from "./container-stage.js";
import { CancelledError, EmittableError } from "./errors.js";
import { extractInContainer, stageArchive } from "./extract-archive.js";
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
  let stage: ContainerStage;
  try {
    stage = await createContainerStage(ctx.sandbox.rootfsPath, ctx.busyboxPath);
  } catch (err) {
    ctx.logger.warn({ err }, "cannot stage a download in the container");
    throw new EmittableError(COPY_IN_FAILED, { cause: err });
  }
  try {
    const { size, type } = await fetchInto(stage, action, ctx, () => emit(`Failed to download ${action.artifact}`));
    emit(`Downloaded ${action.artifact} (${formatByteSize(size)})`);
    await unpack(stage, type, action, ctx);
  } finally {
    await stage.remove().catch((err: unknown) => ctx.logger.warn({ err }, "cannot remove download stage"));
  }
}

async function fetchInto(
  stage: ContainerStage,
  action: DownloadAction,
  ctx: StepContext,
  onFailure: () => void,
): Promise<{ size: number; type: ArchiveType }> {
  try {
    return await ctx.downloads.fetch({ url: action.from, cacheKey: action.cacheKey, signal: ctx.signal }, async (file) => {
      const type = await detectArchiveType(file.path, action.from);
      if (!type) throw new Error("unknown archive format");
      await stageArchive(stage, file.path);
      return { size: file.size, type };
    });
  } catch (err) {
    if (ctx.signal.aborted) throw new CancelledError();
    // The URL may carry credentials: it is neither logged to the user nor put in the reason.
    ctx.logger.warn({ err: (err as Error).message }, "download failed");
    onFailure();
    throw new EmittableError(DOWNLOAD_FAILED, { cause: err });
  }
}

async function unpack(stage: ContainerStage, type: ArchiveType, action: DownloadAction, ctx: StepContext): Promise<void> {
  let exitCode: number;
  try {
    const result = await extractInContainer({
      sandbox: ctx.sandbox,
      stage,
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
