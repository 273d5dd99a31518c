import { closeSync, openSync, unlinkSync, writeFileSync } from "node:fs";
import { bindMount, CLONE_NEWNET, MNT_DETACH, setns, SyscallError, umount, unshare } from "../libc/index.js";
import { RtNetlink } from "./netlink.js";

// Network namespaces kept alive by a bind mount on a file (as `ip netns add` does under
// /run/netns, but in the cell's own directory). The main thread enters a new namespace only for
// the few synchronous calls that must run inside it, then returns: no JS runs in between.

let hostNsFd: number | undefined;

/** The cell's own network namespace, opened once (before any container's). */
function hostNamespace(): number {
  hostNsFd ??= openSync("/proc/thread-self/ns/net", "r");
  return hostNsFd;
}

export interface NewNamespace {
  /** Open descriptor of the namespace (for IFLA_NET_NS_FD); close it when done. */
  fd: number;
  /** An rtnetlink socket inside the namespace, usable from the host. */
  netlink: RtNetlink;
}

/**
 * Creates a namespace bound to `file`, writes `sysctls` (paths under /proc/sys) inside it and
 * opens a netlink socket in it.
 */
export function createNamespace(file: string, sysctls: Record<string, string>): NewNamespace {
  const host = hostNamespace();
  closeSync(openSync(file, "wx", 0o444));
  let netlink: RtNetlink | undefined;
  unshare(CLONE_NEWNET);
  try {
    bindMount("/proc/thread-self/ns/net", file);
    // /proc/sys/net shows the namespace of the thread that opens it: this one, now.
    for (const [key, value] of Object.entries(sysctls)) writeFileSync(`/proc/sys/${key}`, value);
    netlink = RtNetlink.open();
  } catch (err) {
    returnHome(host);
    netlink?.close();
    removeNamespace(file);
    throw err;
  }
  returnHome(host);
  return { fd: openSync(file, "r"), netlink };
}

function returnHome(host: number): void {
  try {
    setns(host, CLONE_NEWNET);
  } catch (err) {
    // Every later socket of this process would open in a container's namespace: stop here.
    process.stderr.write(`fatal: cannot return to the cell's network namespace: ${String(err)}\n`);
    process.abort();
  }
}

/**
 * Enters a namespace already bound on `file` (one owned by a container's user namespace, made by
 * the host helper), writes `sysctls` inside it and opens a netlink socket in it.
 */
export function openNamespace(file: string, sysctls: Record<string, string>): NewNamespace {
  const host = hostNamespace();
  const fd = openSync(file, "r");
  let netlink: RtNetlink | undefined;
  try {
    setns(fd, CLONE_NEWNET);
    try {
      for (const [key, value] of Object.entries(sysctls)) writeFileSync(`/proc/sys/${key}`, value);
      netlink = RtNetlink.open();
    } finally {
      returnHome(host);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return { fd, netlink };
}

/** Unmounts and removes a namespace file; the namespace goes once nothing else holds it. */
export function removeNamespace(file: string): void {
  try {
    umount(file, MNT_DETACH);
  } catch (err) {
    // EINVAL: not a mount point; ENOENT: gone already.
    if (!(err instanceof SyscallError && (err.errno === 22 || err.errno === 2))) throw err;
  }
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
