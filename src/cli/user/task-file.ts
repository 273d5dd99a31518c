import { readFile } from "node:fs/promises";
import { UsageError } from "./errors.js";

/** A TaskCreateRequest from -f FILE, or from stdin with -f -. Sent as it is: the API validates it. */
export interface TaskFile {
  body: string;
  /** task_guid and domain, when the body is a JSON object that has them. */
  guid?: string;
  domain?: string;
}

export async function readTaskFile(file: string | boolean | undefined, stdin: NodeJS.ReadStream, command: string): Promise<TaskFile> {
  if (typeof file !== "string" || file === "") throw new UsageError(`'diego ${command}' needs -f FILE (or -f - for stdin)`);
  let body: string;
  try {
    body = file === "-" ? await readAll(stdin) : await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file === "-" ? "stdin" : file}: ${(err as Error).message}`);
  }
  if (body.trim() === "") throw new UsageError(`${file === "-" ? "stdin" : file} is empty; it should hold a task as JSON (see docs/api.md)`);
  return { body, ...idsOf(body) };
}

async function readAll(stream: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

function idsOf(body: string): { guid?: string; domain?: string } {
  try {
    const doc = JSON.parse(body) as { task_guid?: unknown; domain?: unknown };
    return {
      guid: typeof doc.task_guid === "string" ? doc.task_guid : undefined,
      domain: typeof doc.domain === "string" ? doc.domain : undefined,
    };
  } catch {
    // Not JSON: the API's InvalidJSON answer will say so.
    return {};
  }
}
