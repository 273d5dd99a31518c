import { createReadStream } from "node:fs";
import http from "node:http";
import https from "node:https";

// POSTs one file like Diego's uploader: application/octet-stream with Content-MD5 (base64) and
// Content-Length; up to 3 attempts, retried at once; a status >= 400 fails the attempt.

export const UPLOAD_ATTEMPTS = 3;

export class UploadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UploadError";
  }
}

export interface UploadFile {
  path: string;
  size: number;
  md5Base64: string;
}

export async function uploadFile(file: UploadFile, url: URL, signal: AbortSignal): Promise<void> {
  let lastError: unknown;
  for (let attempt = 0; attempt < UPLOAD_ATTEMPTS; attempt++) {
    try {
      return await attemptUpload(file, url, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

function attemptUpload(file: UploadFile, url: URL, signal: AbortSignal): Promise<void> {
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: "POST",
      signal,
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-MD5": file.md5Base64,
        "Content-Length": String(file.size),
      },
    });
    req.on("error", (err: NodeJS.ErrnoException) =>
      // Never the raw message: Node puts the host (and Go would put the URL) in it.
      reject(new UploadError(`Upload failed: ${err.code ?? "request error"}`, { cause: err })),
    );
    req.on("response", (res) => {
      res.resume();
      res.on("end", () =>
        (res.statusCode ?? 0) >= 400 ? reject(new UploadError(`Upload failed: Status code ${res.statusCode}`)) : resolve(),
      );
      res.on("error", (err) => reject(new UploadError("Upload failed: response error", { cause: err })));
    });
    const body = createReadStream(file.path);
    body.on("error", (err) => req.destroy(err));
    body.pipe(req);
  });
}
