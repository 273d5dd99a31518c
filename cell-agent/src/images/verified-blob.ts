import { createHash } from "node:crypto";
import { ImagePullError } from "./errors.js";
import type { Descriptor } from "./manifest.js";

/**
 * Yields a blob's bytes while hashing them; throws a digest mismatch at the end (or as soon as
 * it grows past its declared size). Callers must consume to the end to have the blob verified.
 */
export async function* verifiedChunks(
  body: AsyncIterable<Uint8Array>,
  expected: Descriptor,
  onProgress: () => void,
): AsyncGenerator<Buffer> {
  const hash = createHash("sha256");
  let received = 0;
  for await (const chunk of body) {
    onProgress();
    received += chunk.byteLength;
    if (received > expected.size) throw sizeMismatch(expected, `more than ${expected.size} bytes`);
    hash.update(chunk);
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  const actual = `sha256:${hash.digest("hex")}`;
  if (actual !== expected.digest) {
    throw new ImagePullError("digest-mismatch", `digest mismatch for ${expected.digest}: content hashes to ${actual}`);
  }
  if (received !== expected.size) throw sizeMismatch(expected, `${received} bytes, expected ${expected.size}`);
}

export async function readAll(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function sizeMismatch(expected: Descriptor, got: string): ImagePullError {
  return new ImagePullError("digest-mismatch", `digest mismatch for ${expected.digest}: got ${got}`);
}
