import { ImagePullError } from "./errors.js";

/** The parts of an image config the cell uses to start processes. */
export interface ImageConfig {
  /** "K=V" entries from config.Env, in order. */
  env: string[];
  /** config.WorkingDir, "/" when unset. */
  workingDir: string;
  /** config.User, "" (root) when unset. */
  user: string;
}

export function parseImageConfig(body: Buffer, digest: string): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ImagePullError("bad-manifest", `bad image config ${digest}: not JSON`);
  }
  const config = field(doc, "config");
  const env = field(config, "Env");
  const workingDir = field(config, "WorkingDir");
  const user = field(config, "User");
  return {
    env: Array.isArray(env) ? env.filter((e): e is string => typeof e === "string") : [],
    workingDir: typeof workingDir === "string" && workingDir !== "" ? workingDir : "/",
    user: typeof user === "string" ? user : "",
  };
}

function field(value: unknown, name: string): unknown {
  if (typeof value !== "object" || value === null) return undefined;
  return (value as Record<string, unknown>)[name];
}
