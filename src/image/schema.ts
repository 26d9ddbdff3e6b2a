// A small binary schema language: each image record type is described once
// as a list of typed fields; the same description encodes, decodes and
// validates. Decoding never trusts a length or count from the input.
import { ImageError } from '../util/errors.js';

export type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64' | 'addr' | 'bool';
export type FieldType =
  | Scalar
  | { str: number } // UTF-8 string, at most N bytes
  | { bytes: number } // raw bytes, at most N
  | { list: Schema; max: number }
  | { struct: Schema };
export type Schema = ReadonlyArray<readonly [string, FieldType]>;
export type Decoded = Record<string, unknown>;

const MAX_ADDR = 2 ** 53;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export class Writer {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u8(v: number): void { this.room(1); this.buf.writeUInt8(v, this.len); this.len += 1; }
  u16(v: number): void { this.room(2); this.buf.writeUInt16LE(v, this.len); this.len += 2; }
  u32(v: number): void { this.room(4); this.buf.writeUInt32LE(v, this.len); this.len += 4; }
  i32(v: number): void { this.room(4); this.buf.writeInt32LE(v, this.len); this.len += 4; }
  u64(v: bigint): void { this.room(8); this.buf.writeBigUInt64LE(v, this.len); this.len += 8; }
  i64(v: bigint): void { this.room(8); this.buf.writeBigInt64LE(v, this.len); this.len += 8; }
  raw(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.len); this.len += b.length; }
  finish(): Buffer { return this.buf.subarray(0, this.len); }
}

export class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  private need(n: number, field: string): void {
    if (this.pos + n > this.buf.length) throw new ImageError(`${this.what}: field ${field} runs past the end of the record`);
  }
  u8(f: string): number { this.need(1, f); const v = this.buf.readUInt8(this.pos); this.pos += 1; return v; }
  u16(f: string): number { this.need(2, f); const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  u32(f: string): number { this.need(4, f); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(f: string): number { this.need(4, f); const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  u64(f: string): bigint { this.need(8, f); const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  i64(f: string): bigint { this.need(8, f); const v = this.buf.readBigInt64LE(this.pos); this.pos += 8; return v; }
  raw(n: number, f: string): Buffer { this.need(n, f); const v = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return v; }
  end(): void {
    if (this.pos !== this.buf.length) throw new ImageError(`${this.what}: ${this.buf.length - this.pos} unexpected trailing bytes`);
  }
}

function fail(what: string, field: string, msg: string): never {
  throw new ImageError(`${what}: field ${field} ${msg}`);
}

export function encodeWith(w: Writer, schema: Schema, value: Decoded, what: string): void {
  for (const [name, type] of schema) {
    const v = value[name];
    const path = `${what}.${name}`;
    if (typeof type === 'string') {
      switch (type) {
        case 'u8': case 'u16': case 'u32': case 'i32': {
          if (typeof v !== 'number' || !Number.isInteger(v)) fail(what, name, `must be an integer, got ${String(v)}`);
          w[type](v);
          break;
        }
        case 'addr': {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= MAX_ADDR) fail(what, name, `must be an address, got ${String(v)}`);
          w.u64(BigInt(v));
          break;
        }
        case 'u64': case 'i64': {
          if (typeof v !== 'bigint') fail(what, name, `must be a bigint, got ${typeof v}`);
          w[type](v);
          break;
        }
        case 'bool':
          w.u8(v ? 1 : 0);
          break;
      }
    } else if ('str' in type) {
      const b = Buffer.from(String(v ?? ''), 'utf8');
      if (b.length > type.str) fail(what, name, `longer than ${type.str} bytes`);
      w.u32(b.length);
      w.raw(b);
    } else if ('bytes' in type) {
      const b = v instanceof Uint8Array ? v : fail(what, name, 'must be bytes');
      if (b.length > type.bytes) fail(what, name, `longer than ${type.bytes} bytes`);
      w.u32(b.length);
      w.raw(b);
    } else if ('list' in type) {
      if (!Array.isArray(v)) fail(what, name, 'must be a list');
      if (v.length > type.max) fail(what, name, `has more than ${type.max} entries`);
      w.u32(v.length);
      for (const item of v) encodeWith(w, type.list, item as Decoded, path);
    } else {
      encodeWith(w, type.struct, v as Decoded, path);
    }
  }
}

export function decodeWith(r: Reader, schema: Schema, what: string): Decoded {
  const out: Decoded = {};
  for (const [name, type] of schema) {
    if (typeof type === 'string') {
      switch (type) {
        case 'addr': {
          const v = r.u64(name);
          if (v >= BigInt(MAX_ADDR)) fail(what, name, `is not a user-space address (0x${v.toString(16)})`);
          out[name] = Number(v);
          break;
        }
        case 'bool': {
          const v = r.u8(name);
          if (v > 1) fail(what, name, `is not a boolean (${v})`);
          out[name] = v === 1;
          break;
        }
        default:
          out[name] = r[type](name);
      }
    } else if ('str' in type) {
      const n = r.u32(name);
      if (n > type.str) fail(what, name, `length ${n} exceeds ${type.str}`);
      const raw = r.raw(n, name);
      try {
        out[name] = utf8.decode(raw);
      } catch {
        fail(what, name, 'is not valid UTF-8');
      }
    } else if ('bytes' in type) {
      const n = r.u32(name);
      if (n > type.bytes) fail(what, name, `length ${n} exceeds ${type.bytes}`);
      out[name] = Buffer.from(r.raw(n, name));
    } else if ('list' in type) {
      const n = r.u32(name);
      if (n > type.max) fail(what, name, `count ${n} exceeds ${type.max}`);
      const items: Decoded[] = [];
      for (let i = 0; i < n; i++) items.push(decodeWith(r, type.list, `${what}.${name}[${i}]`));
      out[name] = items;
    } else {
      out[name] = decodeWith(r, type.struct, `${what}.${name}`);
    }
  }
  return out;
}
