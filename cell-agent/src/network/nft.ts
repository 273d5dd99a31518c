import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createHelperProcess } from "../sandbox/index.js";

// nftables through libnftables, in a small long-lived Node process of its own: one `nft -f`
// transaction (all or nothing) per call, without exec'ing nft.
//
// Why not in the cell's own process (as at first): libnftables (1.0.6) refills its cache before
// nearly every transaction (any commit, ours included, moves the ruleset's generation) and gives
// each table on the machine four fresh 128 KiB hash tables, writing every page of them. The cell
// forks for every `runc`, which makes all its heap pages copy-on-write, so those writes
// page-faulted: 2 ms per table on this VM, 130 ms of the main thread per transaction with 64
// tables, twice per container. This process never forks: the same refill costs ~2 ms there,
// and the cell's event loop does not wait on it.

const require = createRequire(import.meta.url);

export class NftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NftError";
  }
}

export interface Nft {
  /** Runs a script of nft commands as one transaction; rejects with NftError with nft's message. */
  run(script: string): Promise<string>;
}

// The helper: reads {id, script} lines, answers {id, rc, out, err} lines, in order.
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
const lines = require("node:readline").createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const { id, script } = JSON.parse(line);
  const rc = runCmd(ctx, script);
  const out = output(ctx) ?? "";
  const err = errors(ctx) ?? "";
  process.stdout.write(JSON.stringify({ id, rc, out, err }) + "\n");
});
lines.on("close", () => process.exit(0));
`;

interface Reply {
  id: number;
  rc: number;
  out: string;
  err: string;
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
    spawn: () => spawn(process.execPath, ["-e", HELPER, koffiPath], { stdio: ["pipe", "pipe", "pipe"], env: {} }),
    parse: (line) => {
      const reply = JSON.parse(line) as Reply;
      return { id: reply.id, ok: reply.rc === 0, text: reply.rc === 0 ? reply.out : `nft: ${reply.err.trim() || "failed"}` };
    },
    error: (message) => new NftError(message),
  });
  return { run: (script) => helper.call((id) => JSON.stringify({ id, script })) };
}
