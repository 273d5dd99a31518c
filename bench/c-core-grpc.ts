import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadResult, type LoadResult } from "./load.js";

// Runs bench/grpc-load.py: gRPC calls from gRPC's C core (Debian's python3-grpcio) instead of
// @grpc/grpc-js, whose client costs more CPU per call than the receptor's side of it.

const PYTHON = "/usr/bin/python3";
const SCRIPT = path.join(import.meta.dirname, "grpc-load.py");

/** Whether Debian's python3-grpcio is there (scripts/install.sh installs it). */
export function cCoreGrpcAvailable(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import grpc"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

interface Output {
  seconds: number;
  cpuSeconds: number;
  latencies: number[];
  errors: number;
  firstError: string | null;
}

/** `requests`: each call's request bytes, or a number of calls with an empty request. */
export async function runCCoreGrpc(
  address: string,
  method: string,
  concurrency: number,
  requests: Uint8Array[] | number,
): Promise<{ result: LoadResult; cpuSeconds: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "diego-grpc-load-"));
  try {
    let source = String(requests);
    if (typeof requests !== "number") {
      source = path.join(dir, "requests");
      await writeFile(source, Buffer.concat(requests.flatMap((r) => [u32(r.length), r])));
    }
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(PYTHON, [SCRIPT, address, method, String(concurrency), source], { maxBuffer: 64 << 20 }, (err, out, errOut) =>
        err ? reject(new Error(`grpc-load.py: ${err.message}\n${errOut}`)) : resolve(out),
      ),
    );
    const o = JSON.parse(stdout) as Output;
    const result = loadResult(Float64Array.from(o.latencies), o.seconds, o.errors, o.firstError ?? undefined);
    return { result, cpuSeconds: o.cpuSeconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}
