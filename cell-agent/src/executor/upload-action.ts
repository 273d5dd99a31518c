import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { UploadAction } from "../../../src/gen/diego/v1/actions_pb.js";
import { openFileInRoot } from "../sandbox/index.js";
import { formatByteSize } from "./byte-size.js";
import { CancelledError, EmittableError, StepError } from "./errors.js";
import { uploadFile, UploadError, type UploadFile } from "./http-upload.js";
import type { StepContext } from "./types.js";

export const COPY_OUT_FAILED = "Copying out of the container failed";

/**
 * upload: POSTs one file of the container to `to`. The file is first copied to a host temp file
 * (so size and MD5 hold for every attempt), reading the container's filesystem from the host
 * without ever following a symlink out of it. With `artifact` set it logs "Uploading <a>...",
 * then "Uploaded <a> (<size>)" or "Failed to upload <a>" (the URL is never logged).
 */
export async function runUploadAction(action: UploadAction, ctx: StepContext): Promise<void> {
  if (ctx.signal.aborted) throw new CancelledError();
  const out = ctx.logs.source(action.logSource || ctx.source);
  const emit = (text: string): void => {
    if (action.artifact) out.line(text);
  };
  emit(`Uploading ${action.artifact}...`);
  const url = parseUploadUrl(action.to);
  const file = await copyOut(ctx.sandbox.rootfsPath, action.from, ctx);
  try {
    await uploadFile(file, url, ctx.signal);
  } catch (err) {
    if (ctx.signal.aborted) throw new CancelledError();
    ctx.logger.warn({ err: (err as Error).message }, "upload failed");
    emit(`Failed to upload ${action.artifact}`);
    throw new StepError(err instanceof UploadError ? err.message : "Upload failed", false, { cause: err });
  } finally {
    await rm(file.path, { force: true });
  }
  emit(`Uploaded ${action.artifact} (${formatByteSize(file.size)})`);
}

function parseUploadUrl(raw: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new StepError("Upload failed: invalid URL", false);
  }
  return url;
}

async function copyOut(rootfsPath: string, from: string, ctx: StepContext): Promise<UploadFile> {
  const tmp = path.join(os.tmpdir(), `diego-upload-${randomBytes(8).toString("hex")}`);
  try {
    const handle = await openFileInRoot(rootfsPath, from);
    const md5 = createHash("md5");
    let size = 0;
    const source = handle.createReadStream();
    source.on("data", (chunk: Buffer | string) => {
      md5.update(chunk);
      size += chunk.length;
    });
    await pipeline(source, createWriteStream(tmp, { mode: 0o600 }), { signal: ctx.signal });
    return { path: tmp, size, md5Base64: md5.digest("base64") };
  } catch (err) {
    await rm(tmp, { force: true });
    if (ctx.signal.aborted) throw new CancelledError();
    ctx.logger.warn({ err: (err as Error).message, from }, "cannot read the file to upload");
    throw new EmittableError(COPY_OUT_FAILED, { cause: err });
  }
}
