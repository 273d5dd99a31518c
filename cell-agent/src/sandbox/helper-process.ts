import type { ChildProcessWithoutNullStreams } from "node:child_process";
import type { Socket } from "node:net";

// A long-lived helper child answering one line per request, tagged with the request's id: the
// mount helper (host-helper.ts) and the nftables helper (network/nft.ts) both run this way.
// Started on first use, restarted on the next request after it dies; an idle one does not keep
// the cell's process alive.

export interface HelperReply {
  id: number;
  ok: boolean;
  /** The answer, or the failure's message. */
  text: string;
}

export interface HelperProcessOptions {
  /** How the helper is named in errors ("host helper"). */
  name: string;
  spawn(): ChildProcessWithoutNullStreams;
  /** One reply line. */
  parse(line: string): HelperReply;
  /** The error a failed request or a dead helper rejects with. */
  error(message: string): Error;
}

export interface HelperProcess {
  /** Sends the line `encode(id)` and resolves with the reply's text. */
  call(encode: (id: number) => string): Promise<string>;
  /** Counts helper starts: state kept inside one helper (an open fd) is void after a restart. */
  generation(): number;
  running(): boolean;
}

export function createHelperProcess(opts: HelperProcessOptions): HelperProcess {
  let child: ChildProcessWithoutNullStreams | undefined;
  let generation = 0;
  let seq = 0;
  const pending = new Map<number, { resolve(out: string): void; reject(err: Error): void }>();

  const setRef = (on: boolean): void => {
    if (!child) return;
    for (const s of [child.stdin, child.stdout, child.stderr] as unknown as Socket[]) (on ? s.ref() : s.unref());
    if (on) child.ref();
    else child.unref();
  };

  const start = (): ChildProcessWithoutNullStreams => {
    const c = opts.spawn();
    generation++;
    let buffered = "";
    let stderr = "";
    c.stdout.setEncoding("utf8");
    c.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const reply = opts.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        const p = pending.get(reply.id);
        pending.delete(reply.id);
        if (reply.ok) p?.resolve(reply.text);
        else p?.reject(opts.error(reply.text));
      }
      if (pending.size === 0) setRef(false);
    });
    c.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const fail = (why: string): void => {
      if (child === c) child = undefined;
      for (const p of pending.values()) p.reject(opts.error(`${opts.name} ${why}: ${stderr.trim()}`));
      pending.clear();
    };
    c.on("error", (err) => fail(`failed to start (${err.message})`));
    c.on("exit", (code, sig) => fail(`exited (${code ?? sig})`));
    c.stdin.on("error", () => undefined); // reported through "exit"
    return c;
  };

  return {
    call(encode) {
      child ??= start();
      const id = ++seq;
      return new Promise<string>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        setRef(true);
        child!.stdin.write(`${encode(id)}\n`);
      });
    },
    generation: () => generation,
    running: () => child !== undefined,
  };
}
