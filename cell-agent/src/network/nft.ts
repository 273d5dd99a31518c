import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createHelperProcess } from "../sandbox/index.js";

// nftables through libnftables, in a small long-lived Node process of its own: each script is
// one `nft -f` transaction (all or nothing), without exec'ing nft.
//
// Why not in the cell's own process (as at first): libnftables (1.0.6) refills its cache before
// nearly every transaction (any commit, ours included, moves the ruleset's generation) and gives
// each table on the machine four fresh 128 KiB hash tables, writing every page of them. The cell
// forks for every `runc`, which makes all its heap pages copy-on-write, so those writes
// page-faulted: 2 ms per table on this VM, 130 ms of the main thread per transaction with 64
// tables, twice per container. This process never forks, and its malloc keeps freed memory
// (below): the refill then touches pages it already has.
//
// Scripts that arrive while a transaction runs are sent together and run as one transaction:
// one cache refill for all of them, instead of one each. If that fails, each runs again on its
// own, so one bad script fails only its own caller and every script stays all or nothing.

const require = createRequire(import.meta.url);

/** At most this many scripts in one transaction (a failed one reruns each). */
const MAX_BATCH = 32;

/**
 * glibc gives allocations over 128 KiB their own mmap and returns them on free, so every cache
 * refill faulted in its hash tables afresh (~110 faults, 2 ms a transaction with 9 tables on
 * this VM); from the heap, and with the heap never trimmed, the same transaction takes 0.4 ms.
 */
const MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296";

export class NftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NftError";
  }
}

export interface Nft {
  /** Runs a script of nft commands as one transaction; rejects with NftError with nft's message. */
  run(script: string): Promise<void>;
}

// The helper: reads {id, scripts} lines, answers {id, results: [{rc, err}]} lines, in order.
const HELPER = String.raw`
const koffi = require(process.argv[1]);
const lib = koffi.load("libnftables.so.1");
const ctxNew = lib.func("void *nft_ctx_new(uint32_t flags)");
const bufferOutput = lib.func("int nft_ctx_buffer_output(void *ctx)");
const bufferError = lib.func("int nft_ctx_buffer_error(void *ctx)");
const runCmd = lib.func("int nft_run_cmd_from_buffer(void *ctx, const char *buf)");
const output = lib.func("const char *nft_ctx_get_output_buffer(void *ctx)");
const errors = lib.func("const char *nft_ctx_get_error_buffer(void *ctx)");
const ctx = ctxNew(0);
if (!ctx) { process.stderr.write("nft_ctx_new failed\n"); process.exit(1); }
bufferOutput(ctx);
bufferError(ctx);
const run = (script) => {
  const rc = runCmd(ctx, script);
  output(ctx); // read (and so reset) even if unused: the buffers grow until read
  const err = errors(ctx) ?? "";
  return { rc, err: rc === 0 ? "" : err };
};
const lines = require("node:readline").createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const { id, scripts } = JSON.parse(line);
  let results;
  if (scripts.length === 1) results = [run(scripts[0])];
  else {
    const all = run(scripts.join("\n"));
    results = all.rc === 0 ? scripts.map(() => all) : scripts.map(run);
  }
  process.stdout.write(JSON.stringify({ id, results }) + "\n");
});
lines.on("close", () => process.exit(0));
`;

interface Result {
  rc: number;
  err: string;
}

interface Queued {
  script: string;
  resolve(): void;
  reject(err: Error): void;
}

let shared: Nft | undefined;

/** The process's nftables helper (its netlink socket is in the cell's namespace), started on first use. */
export function nft(): Nft {
  shared ??= createNft();
  return shared;
}

function createNft(): Nft {
  const koffiPath = require.resolve("koffi");
  const helper = createHelperProcess({
    name: "nftables helper",
    // Spawned from JS, so from the cell's own network namespace (JS never runs in a container's).
    spawn: () => spawn(process.execPath, ["-e", HELPER, koffiPath], { stdio: ["pipe", "pipe", "pipe"], env: { GLIBC_TUNABLES: MALLOC_TUNABLES } }),
    parse: (line) => {
      const reply = JSON.parse(line) as { id: number; results: Result[] };
      return { id: reply.id, ok: true, text: JSON.stringify(reply.results) };
    },
    error: (message) => new NftError(message),
  });
  const queue: Queued[] = [];
  let busy = false;

  const send = async (batch: Queued[]): Promise<void> => {
    let results: Result[];
    try {
      results = JSON.parse(await helper.call((id) => JSON.stringify({ id, scripts: batch.map((q) => q.script) }))) as Result[];
    } catch (err) {
      for (const q of batch) q.reject(err as Error);
      return;
    }
    batch.forEach((q, i) => {
      const r = results[i];
      if (r?.rc === 0) q.resolve();
      else q.reject(new NftError(`nft: ${r?.err.trim() || "failed"}`));
    });
  };

  const drain = async (): Promise<void> => {
    busy = true;
    while (queue.length > 0) await send(queue.splice(0, MAX_BATCH));
    busy = false;
  };

  return {
    run: (script) =>
      new Promise<void>((resolve, reject) => {
        queue.push({ script, resolve, reject });
        if (!busy) void drain();
      }),
  };
}
