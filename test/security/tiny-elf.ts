// Tiny static x86-64 programs for probing what a container's kernel interface allows, written
// as machine code (the busybox rootfs has no compiler or perl): one ELF header, one loadable
// segment, and the code. Each program makes one syscall and exits with a status derived from it.

const BASE = 0x400000;
const HEADER_SIZE = 64 + 56;

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u16 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff];
const u64 = (n: number): number[] => [...u32(n), ...u32(Math.floor(n / 2 ** 32))];

const movEdi = (v: number): number[] => [0xbf, ...u32(v)];
const movEsi = (v: number): number[] => [0xbe, ...u32(v)];
const movEax = (v: number): number[] => [0xb8, ...u32(v)];
const XOR_EDX = [0x31, 0xd2];
const SYSCALL = [0x0f, 0x05];
const NEG_EAX = [0xf7, 0xd8];
const MOV_EDI_EAX = [0x89, 0xc7];
const EXIT_WITH_EDI = [...movEax(60), ...SYSCALL];

function elf(code: number[]): Buffer {
  const size = HEADER_SIZE + code.length;
  const header = [
    0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ELF64, little endian
    ...u16(2), ...u16(0x3e), ...u32(1), // ET_EXEC, x86-64
    ...u64(BASE + HEADER_SIZE), ...u64(64), ...u64(0), // entry, program headers, no sections
    ...u32(0), ...u16(64), ...u16(56), ...u16(1), ...u16(0), ...u16(0), ...u16(0),
  ];
  const segment = [...u32(1), ...u32(5), ...u64(0), ...u64(BASE), ...u64(BASE), ...u64(size), ...u64(size), ...u64(0x1000)];
  return Buffer.from([...header, ...segment, ...code]);
}

/** Exits with its effective uid (mod 256): 0 means it ran as root. */
export const EUID_PROBE = elf([...movEax(107), ...SYSCALL, ...MOV_EDI_EAX, ...EXIT_WITH_EDI]);

/** Calls syscall nr with up to two int arguments; exits 0 on success, else with the errno. */
function errnoProbe(nr: number, arg0: number, arg1 = 0): Buffer {
  // A successful call returns >= 0: exit 0. A failure returns -errno: exit errno.
  const code = [...movEdi(arg0), ...movEsi(arg1), ...XOR_EDX, ...movEax(nr), ...SYSCALL];
  const jumpIfNegative = [0x85, 0xc0, 0x78, 0x02]; // test eax,eax; js +2
  const zero = [0x31, 0xc0]; // xor eax,eax
  return elf([...code, ...jumpIfNegative, ...zero, ...NEG_EAX, ...MOV_EDI_EAX, ...EXIT_WITH_EDI]);
}

const AF_VSOCK = 40;
const SOCK_STREAM = 1;
const READ_IMPLIES_EXEC = 0x0400000;

/** socket(AF_VSOCK, SOCK_STREAM, 0). */
export const VSOCK_PROBE = errnoProbe(41, AF_VSOCK, SOCK_STREAM);
/** socket(AF_UNIX, SOCK_STREAM, 0): an ordinary socket. */
export const UNIX_SOCKET_PROBE = errnoProbe(41, 1, SOCK_STREAM);
/** personality(READ_IMPLIES_EXEC). */
export const READ_IMPLIES_EXEC_PROBE = errnoProbe(135, READ_IMPLIES_EXEC);
/** personality(0xffffffff): only asks for the current persona. */
export const PERSONALITY_QUERY_PROBE = errnoProbe(135, 0xffffffff);
