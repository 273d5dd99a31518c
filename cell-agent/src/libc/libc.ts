import { createRequire } from "node:module";

// The few system calls Node cannot make: namespaces, mounts and raw netlink sockets, through
// koffi (an FFI with prebuilt binaries in its npm package). Each runs synchronously on the
// calling (main) thread, which is what setns/unshare act on.

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const koffi = require("koffi") as typeof import("koffi");

const libc = koffi.load("libc.so.6");

export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MNT_DETACH = 2;
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const EWOULDBLOCK = 11;

const fns = {
  unshare: libc.func("int unshare(int flags)"),
  setns: libc.func("int setns(int fd, int nstype)"),
  mount: libc.func("int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)"),
  umount2: libc.func("int umount2(const char *target, int flags)"),
  socket: libc.func("int socket(int domain, int type, int protocol)"),
  send: libc.func("long send(int fd, const void *buf, size_t len, int flags)"),
  recv: libc.func("long recv(int fd, _Out_ void *buf, size_t len, int flags)"),
  close: libc.func("int close(int fd)"),
  strerror: libc.func("const char *strerror(int errnum)"),
  lseek: libc.func("long lseek(int fd, long offset, int whence)"),
  flock: libc.func("int flock(int fd, int operation)"),
};

export class SyscallError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${fns.strerror(errno) as string} (errno ${errno})`);
    this.name = "SyscallError";
  }
}

function check(call: string, result: number | bigint): number {
  const n = Number(result);
  if (n < 0) throw new SyscallError(call, koffi.errno());
  return n;
}

export const unshare = (flags: number): void => void check("unshare", fns.unshare(flags) as number);
export const setns = (fd: number, nstype: number): void => void check("setns", fns.setns(fd, nstype) as number);
export const bindMount = (source: string, target: string): void =>
  void check(`mount ${target}`, fns.mount(source, target, null, MS_BIND, null) as number);
export const umount = (target: string, flags: number): void => void check(`umount ${target}`, fns.umount2(target, flags) as number);
export const socket = (domain: number, type: number, protocol: number): number => check("socket", fns.socket(domain, type, protocol) as number);
export const send = (fd: number, buf: Buffer): number => check("send", fns.send(fd, buf, buf.length, 0) as number);
export const recv = (fd: number, buf: Buffer): number => check("recv", fns.recv(fd, buf, buf.length, 0) as number);
export const closeFd = (fd: number): void => void fns.close(fd);
export const seekEnd = (fd: number): void => void check("lseek", fns.lseek(fd, 0, 2) as number);
export const strerror = (errno: number): string => fns.strerror(errno) as string;
/** flock(2); false instead of EWOULDBLOCK when LOCK_NB finds it held. */
export const flock = (fd: number, operation: number): boolean => {
  if ((fns.flock(fd, operation) as number) === 0) return true;
  const errno = koffi.errno();
  if (errno === EWOULDBLOCK) return false;
  throw new SyscallError("flock", errno);
};
