import type { Logger } from "pino";
import type { Action } from "../../../src/gen/diego/v1/actions_pb.js";
import type { LogStreamer } from "../logs/index.js";
import type { Sandbox } from "../sandbox/index.js";
import type { DownloadCache } from "./download-cache.js";

export interface ExecuteDeps {
  sandbox: Sandbox;
  logs: LogStreamer;
  /** The cell's download cache (cache_key, at most 5 concurrent downloads); a private one otherwise. */
  downloadCache?: DownloadCache;
  /** Aborting cancels the task: running processes are killed at once. */
  signal: AbortSignal;
  logger?: Logger;
  /** User for actions whose `user` is empty (the image's USER); empty = root. */
  defaultUser?: string;
}

export interface ExecuteResult {
  failed: boolean;
  failureReason: string;
  result: string;
}

/** Runs one action (and its children) under a context; rejects with a StepError on failure. */
export type StepRunner = (action: Action, ctx: StepContext) => Promise<void>;

/** What every step sees. Children get a copy with their own signal and log source. */
export interface StepContext {
  sandbox: Sandbox;
  logs: LogStreamer;
  downloads: DownloadCache;
  signal: AbortSignal;
  logger: Logger;
  /** The log source name inherited from the parent (task log_source or "LOG" at the top). */
  source: string;
  defaultUser: string;
  runStep: StepRunner;
  /** Set when the task is exactly one process: that run may use the sandbox's single-shot path. */
  singleProcess: {
    available: boolean;
    /** ADDED (lrp): run it as the child of a minimal PID 1, so it can be stopped gracefully. */
    asChild?: boolean;
  };
  /** ADDED (lrp): called when a run step's process has started (the LRP's RUNNING without a monitor). */
  processStarted?: () => void;
}
