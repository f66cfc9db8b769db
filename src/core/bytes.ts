/**
 * @module
 * Byte helpers shared by the formats: strict base64 (RFC 4648 §4, standard alphabet, padded),
 * lowercase hex, strict UTF-8, canonical decimals and big-endian integers. No Buffer, no node:*,
 * so the verifier runs unchanged in browsers.
 *
 * Strictness matters: anything we sign or verify must have exactly one encoding, so the decoders
 * refuse non-canonical input (missing padding, non-zero trailing bits, leading zeros) rather
 * than normalising it.
 */
import { VellumError } from "./errors.js";

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

export function base64Encode(bytes: Uint8Array): string {
  let out = "";
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[v >> 18]! + B64[(v >> 12) & 63]! + B64[(v >> 6) & 63]! + B64[v & 63]!;
  }
  if (i + 1 === n) {
    const v = bytes[i]! << 16;
    out += `${B64[v >> 18]!}${B64[(v >> 12) & 63]!}==`;
  } else if (i + 2 === n) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += `${B64[v >> 18]!}${B64[(v >> 12) & 63]!}${B64[(v >> 6) & 63]!}=`;
  }
  return out;
}

/**
 * Decodes canonical, padded, standard base64. `what` names the value in the error message.
 * Refuses whitespace, the URL alphabet, missing padding and non-zero pad bits.
 */
export function base64Decode(text: string, what = "base64 value"): Uint8Array {
  const fail = (why: string) => new VellumError("MALFORMED", `${what}: ${why}`);
  if (text.length % 4 !== 0) throw fail("length is not a multiple of 4 (standard padded base64)");
  let pad = 0;
  if (text.endsWith("==")) pad = 2;
  else if (text.endsWith("=")) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const c = [0, 0, 0, 0];
    for (let j = 0; j < 4; j++) {
      const code = text.charCodeAt(i + j);
      if (last && code === 61 /* = */ && j >= 4 - pad) continue;
      const v = code < 128 ? B64_INDEX[code]! : -1;
      if (v < 0) throw fail(`invalid character at offset ${i + j}`);
      c[j] = v;
    }
    const v = (c[0]! << 18) | (c[1]! << 12) | (c[2]! << 6) | c[3]!;
    out[o++] = v >> 16;
    if (o < out.length) out[o++] = (v >> 8) & 255;
    if (o < out.length) out[o++] = v & 255;
    if (last && pad > 0 && (pad === 2 ? v & 0xffff : v & 0xff) !== 0) {
      throw fail("non-canonical encoding (non-zero padding bits)");
    }
  }
  return out;
}

/** Decodes base64 that must hold exactly `length` bytes (a hash, a key, a signature). */
export function base64DecodeFixed(text: string, length: number, what: string): Uint8Array {
  const bytes = base64Decode(text, what);
  if (bytes.length !== length) {
    throw new VellumError("MALFORMED", `${what}: expected ${length} bytes, got ${bytes.length}`);
  }
  return bytes;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function hexEncode(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]!]!;
  return out;
}

/** Decodes lowercase or uppercase hex of even length. */
export function hexDecode(text: string, what = "hex value"): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new VellumError("MALFORMED", `${what}: not an even-length hex string`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Strings up to this long that are all ASCII are encoded here, into a Uint8Array that V8 keeps
 * on its heap (up to 64 bytes): TextEncoder returns a buffer malloc'd outside it, freed later
 * by V8's sweeper threads, which for the index's keys (several short strings per event) cost
 * more than the encoding itself.
 */
const SHORT_ASCII = 64;

export function utf8Encode(text: string): Uint8Array {
  const n = text.length;
  if (n <= SHORT_ASCII) {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      out[i] = c;
    }
    if (i === n) return out;
  }
  return encoder.encode(text);
}

/** Decodes UTF-8, refusing invalid sequences (instead of inserting U+FFFD). */
export function utf8Decode(bytes: Uint8Array, what = "text"): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new VellumError("MALFORMED", `${what}: not valid UTF-8`);
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Parses a canonical non-negative decimal (no sign, no leading zeros, ASCII digits only) that
 * fits a JavaScript safe integer. Tree sizes and indices are bounded by 2^53-1 throughout Vellum.
 */
export function parseDecimal(text: string, what: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(text)) {
    throw new VellumError("MALFORMED", `${what}: "${clip(text)}" is not a canonical decimal`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new VellumError("OUT_OF_RANGE", `${what}: ${clip(text)} exceeds 2^53-1`);
  }
  return value;
}

/** Writes `value` (0 <= value <= 2^53-1) as 8 big-endian bytes into `out` at `offset`. */
export function putUint64(out: Uint8Array, offset: number, value: number): void {
  // Split into 32-bit halves first: bit operations are exact on each half.
  let hi = Math.floor(value / 2 ** 32);
  let lo = value - hi * 2 ** 32;
  for (let i = 3; i >= 0; i--) {
    out[offset + i] = hi & 0xff;
    out[offset + 4 + i] = lo & 0xff;
    hi >>>= 8;
    lo >>>= 8;
  }
}

/** Reads 8 big-endian bytes as a number; refuses values above 2^53-1. */
export function getUint64(bytes: Uint8Array, offset: number, what = "uint64"): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const value = view.getUint32(offset) * 2 ** 32 + view.getUint32(offset + 4);
  if (!Number.isSafeInteger(value)) {
    throw new VellumError("OUT_OF_RANGE", `${what}: value exceeds 2^53-1`);
  }
  return value;
}

/** Shortens untrusted text quoted in error messages. */
export function clip(text: string, max = 64): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
