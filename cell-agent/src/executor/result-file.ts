import { utf8Boundary } from "../logs/index.js";
import { readFileHeadInRoot } from "../sandbox/index.js";

/** The contract's limit on `result`: the first 10 KiB of result_file. */
export const RESULT_MAX_BYTES = 10 * 1024;

/**
 * The task's result: the first 10 KiB of result_file, cut back to a whole UTF-8 character.
 * Rejects when the file is missing, not a regular file, or reachable only through a symlink
 * leaving the container.
 */
export async function readResultFile(rootfsPath: string, resultFile: string): Promise<string> {
  // One extra byte tells whether the cut fell inside a character.
  const head = await readFileHeadInRoot(rootfsPath, resultFile, RESULT_MAX_BYTES + 1);
  return head.subarray(0, utf8Boundary(head, RESULT_MAX_BYTES)).toString("utf8");
}
