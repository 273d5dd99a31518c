import { open } from "node:fs/promises";

export type ArchiveType = "tgz" | "tar" | "zip";

/**
 * What a downloaded file is, by its magic bytes (gzip, zip, ustar), else by the URL's
 * extension; undefined when neither says (Diego fails such downloads).
 */
export async function detectArchiveType(file: string, url: string): Promise<ArchiveType | undefined> {
  const head = Buffer.alloc(512);
  const handle = await open(file, "r");
  let length: number;
  try {
    ({ bytesRead: length } = await handle.read(head, 0, head.length, 0));
  } finally {
    await handle.close();
  }
  return byMagic(head.subarray(0, length)) ?? byExtension(url);
}

function byMagic(head: Buffer): ArchiveType | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return "tgz";
  const pk = head.subarray(0, 4).toString("latin1");
  if (pk === "PK\x03\x04" || pk === "PK\x05\x06") return "zip";
  if (head.subarray(257, 262).toString("latin1") === "ustar") return "tar";
  return undefined;
}

function byExtension(url: string): ArchiveType | undefined {
  let pathname: string;
  try {
    pathname = new URL(url).pathname.toLowerCase();
  } catch {
    return undefined;
  }
  if (pathname.endsWith(".zip")) return "zip";
  if (pathname.endsWith(".tgz") || pathname.endsWith(".tar.gz")) return "tgz";
  if (pathname.endsWith(".tar")) return "tar";
  return undefined;
}
