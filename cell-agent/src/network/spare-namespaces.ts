import { closeSync, openSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { bindMount } from "../libc/index.js";
import type { RtNetlink } from "./netlink.js";
import { createNamespace, removeNamespace, type NewNamespace } from "./netns.js";

// Network namespaces made ahead, each with its veth pair (host end enslaved to the bridge,
// isolated and down; eth0 inside), so a container's start only binds one in, renames and raises
// the veth and adds the address and route: making a namespace (unshare, bind mount, sysctls) and
// a veth pair is ~2-3 ms of the main thread, on the task's clock when made at the start. A spare
// taken gets a replacement a little later, when the container it went to is running (the main
// thread then waits on runc). None are made before the first start: a cell that runs no
// container holds none. A spare's veth is down and named outside the containers' prefix until
// it is renamed (then raised, in that order), and no process runs in a spare: nothing passes it
// unchecked by the bridge's anti-spoofing set.

/** How many spares a cell keeps once it runs containers. */
const SPARES = 4;
/** Wait after a spare is taken before making the next (the start that took it goes first). */
const REFILL_DELAY_MS = 25;

/** A spare taken: its namespace, and its veth's host end (down, still under its spare name). */
export interface TakenSpare extends NewNamespace {
  hostIndex: number;
}

interface Spare extends TakenSpare {
  file: string;
}

export interface SpareOptions {
  dir: string;
  sysctls: Record<string, string>;
  /** The cell's netlink socket, its bridge and the name prefix of spare veths. */
  rt: RtNetlink;
  bridgeIndex: number;
  vethPrefix: string;
  logger: Logger;
}

export interface SpareNamespaces {
  /**
   * Binds a ready namespace (loopback up, sysctls written) on `file` instead of its spare file,
   * or returns undefined if none is left (or moving it failed).
   */
  take(file: string): TakenSpare | undefined;
  /** Removes the spares not taken. */
  close(): void;
}

export function spareNamespaces(opts: SpareOptions): SpareNamespaces {
  const ready: Spare[] = [];
  /** Spare files of namespaces taken: unmounting costs ~1-4 ms (RCU waits), so it waits too. */
  const moved: string[] = [];
  let seq = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const schedule = (): void => {
    if (!timer && !closed && (ready.length < SPARES || moved.length > 0)) timer = setTimeout(makeOne, REFILL_DELAY_MS).unref();
  };
  const unmountMoved = (): void => {
    for (const file of moved.splice(0)) {
      try {
        removeNamespace(file);
      } catch (err) {
        opts.logger.warn({ err, file }, "could not remove a spare network namespace file");
      }
    }
  };
  const makeOne = (): void => {
    timer = undefined;
    unmountMoved();
    if (closed || ready.length >= SPARES) return;
    const n = ++seq;
    const file = path.join(opts.dir, String(n));
    try {
      ready.push(makeSpare(file, (n & 0xffff).toString(16), opts));
    } catch (err) {
      opts.logger.warn({ err }, "could not make a spare network namespace");
      return; // the next take tries again
    }
    schedule(); // one per timer tick: the event loop is never held for more than one
  };
  const discard = (s: Spare): void => {
    s.netlink.close();
    closeSync(s.fd);
    removeNamespace(s.file);
  };

  return {
    take(file) {
      const spare = ready.shift();
      schedule();
      if (!spare) return undefined;
      let created = false;
      try {
        closeSync(openSync(file, "wx", 0o444));
        created = true;
        bindMount(spare.file, file);
        moved.push(spare.file);
        return { fd: spare.fd, netlink: spare.netlink, hostIndex: spare.hostIndex };
      } catch (err) {
        opts.logger.warn({ err, file }, "could not move a spare network namespace");
        try {
          discard(spare);
          if (created) removeNamespace(file); // so a namespace can still be made there
        } catch (cleanupErr) {
          opts.logger.warn({ err: cleanupErr }, "could not remove a spare network namespace");
        }
        return undefined;
      }
    },
    close() {
      closed = true;
      clearTimeout(timer);
      unmountMoved();
      for (const s of ready.splice(0)) discard(s);
    },
  };
}

function makeSpare(file: string, suffix: string, opts: SpareOptions): Spare {
  const ns = createNamespace(file, opts.sysctls);
  try {
    ns.netlink.setUp(1);
    const veth = `${opts.vethPrefix}${suffix}`;
    opts.rt.addVeth(veth, opts.bridgeIndex, "eth0", ns.fd, false);
    // Isolated ports reach the bridge (the cell) only; the flag stays through the rename.
    writeFileSync(`/sys/class/net/${veth}/brport/isolated`, "1");
    return { ...ns, file, hostIndex: opts.rt.linkIndex(veth) };
  } catch (err) {
    ns.netlink.close();
    closeSync(ns.fd);
    removeNamespace(file); // the veth pair, if made, goes with the namespace
    throw err;
  }
}
