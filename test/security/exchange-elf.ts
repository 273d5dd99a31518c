// A static x86-64 Linux program for the attacks: `xchg A B` swaps the names A and B atomically
// (renameat2 RENAME_EXCHANGE) over and over, and exits once a swap fails (one side is gone)
// or after `iterations` swaps. The busybox root filesystem has no such tool and the test host
// has no compiler to count on, so the test writes the ELF file itself. The machine code:
//
//   mov 0x10(%rsp),%r13        ; argv[1]
//   mov 0x18(%rsp),%r14        ; argv[2]
//   mov $iterations,%r12d
// loop:
//   mov $316,%eax              ; renameat2
//   mov $-100,%edi             ; AT_FDCWD
//   mov %r13,%rsi
//   mov $-100,%edx             ; AT_FDCWD
//   mov %r14,%r10
//   mov $2,%r8d                ; RENAME_EXCHANGE
//   syscall
//   test %rax,%rax
//   jne exit
//   dec %r12d
//   jne loop
// exit:
//   mov $60,%eax               ; exit(0)
//   xor %edi,%edi
//   syscall

const LOAD_ADDRESS = 0x400000;
const HEADERS = 64 + 56;

function code(iterations: number): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32LE(iterations);
  // prettier-ignore
  return Buffer.from([
    0x4c, 0x8b, 0x6c, 0x24, 0x10,
    0x4c, 0x8b, 0x74, 0x24, 0x18,
    0x41, 0xbc, ...count,
    0xb8, 0x3c, 0x01, 0x00, 0x00,
    0xbf, 0x9c, 0xff, 0xff, 0xff,
    0x4c, 0x89, 0xee,
    0xba, 0x9c, 0xff, 0xff, 0xff,
    0x4d, 0x89, 0xf2,
    0x41, 0xb8, 0x02, 0x00, 0x00, 0x00,
    0x0f, 0x05,
    0x48, 0x85, 0xc0,
    0x75, 0x05,
    0x41, 0xff, 0xcc,
    0x75, 0xd9,
    0xb8, 0x3c, 0x00, 0x00, 0x00,
    0x31, 0xff,
    0x0f, 0x05,
  ]);
}

/** The `xchg` program as an ELF file (x86-64 only, like the machines this project runs on). */
export function exchangeProgram(iterations: number): Buffer {
  if (process.arch !== "x64") throw new Error(`the exchange program is x86-64 code; this is ${process.arch}`);
  const text = code(iterations);
  const size = HEADERS + text.length;
  const elf = Buffer.alloc(HEADERS);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(elf, 0); // ELF, 64-bit, little-endian, v1
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS + HEADERS), 24); // entry
  elf.writeBigUInt64LE(64n, 32); // program headers follow the ELF header
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  // One PT_LOAD, read + execute, the whole file at LOAD_ADDRESS.
  elf.writeUInt32LE(1, 64);
  elf.writeUInt32LE(5, 68);
  elf.writeBigUInt64LE(0n, 72);
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS), 80);
  elf.writeBigUInt64LE(BigInt(LOAD_ADDRESS), 88);
  elf.writeBigUInt64LE(BigInt(size), 96);
  elf.writeBigUInt64LE(BigInt(size), 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  return Buffer.concat([elf, text]);
}
