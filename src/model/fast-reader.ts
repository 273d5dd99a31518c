// A protobuf wire reader for the compiled decoders (compile-decoder.ts). protobuf-es's
// BinaryReader decodes every string through TextDecoder and every int64 through BigInt
// arithmetic; the task fields are short ASCII strings and small integers, which this reads
// directly.

const utf8 = new TextDecoder("utf-8", { fatal: true });
const SHORT_STRING = 64;

export class FastReader {
  pos = 0;
  readonly len: number;
  private readonly view: DataView;

  constructor(readonly buf: Uint8Array) {
    this.len = buf.length;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.len) throw new Error("premature end of message");
  }

  /** A varint's low 32 bits (the rest of a longer varint is read and dropped). */
  private varint32(): number {
    const b = this.buf;
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= this.len) throw new Error("premature end of varint");
      if (shift >= 70) throw new Error("varint longer than 10 bytes");
      const byte = b[this.pos++]!;
      if (shift < 32) result |= (byte & 0x7f) << shift;
      if (byte < 0x80) return result;
    }
  }

  uint32(): number {
    return this.varint32() >>> 0;
  }

  int32(): number {
    return this.varint32() | 0;
  }

  sint32(): number {
    const v = this.varint32() >>> 0;
    return (v >>> 1) ^ -(v & 1);
  }

  /** A full 64-bit varint, unsigned, read as two 32-bit halves (BigInt arithmetic is slow). */
  private varint64(): bigint {
    const b = this.buf;
    const len = this.len;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let byte = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= len) throw new Error("premature end of varint");
      byte = b[pos++]!;
      lo |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = pos;
        return BigInt(lo);
      }
    }
    if (pos >= len) throw new Error("premature end of varint");
    byte = b[pos++]!;
    lo |= (byte & 0x0f) << 28;
    hi = (byte & 0x7f) >> 4;
    // Bits 35 and up; a tenth byte's bits past 64 are dropped, as protobuf-es does.
    for (let shift = 3; byte >= 0x80; shift += 7) {
      if (shift > 31) throw new Error("varint longer than 10 bytes");
      if (pos >= len) throw new Error("premature end of varint");
      byte = b[pos++]!;
      hi |= (byte & 0x7f) << shift;
    }
    this.pos = pos;
    lo >>>= 0;
    hi >>>= 0;
    return hi === 0 ? BigInt(lo) : hi < 0x200000 ? BigInt(hi * 0x100000000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }

  uint64(): bigint {
    return this.varint64();
  }

  int64(): bigint {
    return BigInt.asIntN(64, this.varint64());
  }

  sint64(): bigint {
    const u = this.varint64();
    return (u >> 1n) ^ -(u & 1n);
  }

  bool(): boolean {
    return this.varint64() !== 0n;
  }

  /** Moves past `n` bytes of a fixed-width value; returns where it starts. */
  private advance(n: number): number {
    this.need(n);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  fixed32(): number {
    return this.view.getUint32(this.advance(4), true);
  }

  sfixed32(): number {
    return this.view.getInt32(this.advance(4), true);
  }

  float(): number {
    return this.view.getFloat32(this.advance(4), true);
  }

  double(): number {
    return this.view.getFloat64(this.advance(8), true);
  }

  fixed64(): bigint {
    return this.view.getBigUint64(this.advance(8), true);
  }

  sfixed64(): bigint {
    return this.view.getBigInt64(this.advance(8), true);
  }

  /** The length of a length-delimited field, checked against what is left. */
  length(): number {
    const n = this.uint32();
    this.need(n);
    return n;
  }

  bytes(): Uint8Array {
    const n = this.length();
    const start = this.pos;
    this.pos += n;
    return this.buf.subarray(start, start + n);
  }

  /** UTF-8, validated like protobuf-es does for proto3 strings. */
  string(): string {
    const n = this.length();
    const b = this.buf;
    const start = this.pos;
    this.pos += n;
    if (n <= SHORT_STRING) {
      let s = "";
      for (let i = start; i < start + n; i++) {
        const c = b[i]!;
        if (c >= 0x80) return utf8.decode(b.subarray(start, start + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return utf8.decode(b.subarray(start, start + n));
  }

  /** Skips one field's value; returns its bytes (kept as an unknown field). */
  skip(wireType: number, fieldNo: number, depth = 0): Uint8Array {
    const start = this.pos;
    switch (wireType) {
      case 0:
        this.varint64();
        break;
      case 1:
        this.need(8);
        this.pos += 8;
        break;
      case 2: {
        const n = this.length(); // before reading pos: length() moves it past the varint
        this.pos += n;
        break;
      }
      case 5:
        this.need(4);
        this.pos += 4;
        break;
      case 3:
        if (depth > 100) throw new Error("groups nested too deeply");
        for (;;) {
          const tag = this.uint32();
          const wt = tag & 7;
          if (wt === 4) {
            if (tag >>> 3 !== fieldNo) throw new Error("invalid end group tag");
            break;
          }
          this.skip(wt, tag >>> 3, depth + 1);
        }
        break;
      default:
        throw new Error(`cannot skip wire type ${wireType}`);
    }
    return this.buf.subarray(start, this.pos);
  }
}
