import { createRequire } from "node:module";

// nftables through libnftables in this process: one `nft -f` transaction (all or nothing) per
// call, without exec'ing nft (~8 ms a time on a busy 2-core machine; this takes ~0.3 ms).

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const koffi = require("koffi") as typeof import("koffi");

export class NftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NftError";
  }
}

export interface Nft {
  /** Runs a script of nft commands as one transaction; throws NftError with nft's message. */
  run(script: string): string;
}

let instance: Nft | undefined;

/** The process's libnftables context (its netlink socket is opened in the host namespace). */
export function nft(): Nft {
  instance ??= openNft();
  return instance;
}

function openNft(): Nft {
  const lib = koffi.load("libnftables.so.1");
  const ctxNew = lib.func("void *nft_ctx_new(uint32_t flags)");
  const bufferOutput = lib.func("int nft_ctx_buffer_output(void *ctx)");
  const bufferError = lib.func("int nft_ctx_buffer_error(void *ctx)");
  const runCmd = lib.func("int nft_run_cmd_from_buffer(void *ctx, const char *buf)");
  const output = lib.func("const char *nft_ctx_get_output_buffer(void *ctx)");
  const errors = lib.func("const char *nft_ctx_get_error_buffer(void *ctx)");
  const ctx = ctxNew(0);
  if (!ctx) throw new NftError("libnftables: nft_ctx_new failed");
  bufferOutput(ctx);
  bufferError(ctx);
  return {
    run(script) {
      const rc = runCmd(ctx, script) as number;
      const out = (output(ctx) as string | null) ?? "";
      const err = (errors(ctx) as string | null) ?? "";
      if (rc !== 0) throw new NftError(`nft: ${err.trim() || "failed"}`);
      return out;
    },
  };
}
