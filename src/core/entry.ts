/**
 * @module
 * Vellum's leaf encoding: what a Merkle leaf commits to for each entry, as deterministic CBOR
 * (RFC 8949 §4.2.1: shortest-form heads, definite lengths), so any standard CBOR decoder reads a
 * leaf out of an entry bundle, and none of its parts can change after the fact:
 *
 *   leaf  = [1, id, timestamp, payload]         ; a CBOR array of 4
 *   id    = bstr .size 16                       ; UUIDv7, big-endian, as RFC 9562 lays it out
 *   timestamp = uint                            ; server time, milliseconds since the Unix epoch
 *   payload   = bstr                            ; the submitted bytes, opaque
 *
 * The receipt's `extra` (C2SP tlog-proof) holds `[1, id, timestamp, leafHash]`: the same fields
 * without the payload, plus the leaf hash, so the receipt proves that leaf hash on its own and a
 * verifier holding the payload can rebuild the exact leaf.
 *
 * A leaf must fit an entry bundle (65,535 bytes), which leaves MAX_PAYLOAD_SIZE bytes of payload.
 * Decoding is strict: anything but the canonical encoding is MALFORMED.
 */
import { hexDecode, hexEncode } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { check, VellumError } from "./errors.js";
import { MAX_ENTRY_SIZE } from "./tiles.js";

export const LEAF_VERSION = 1;
export const ID_SIZE = 16;

/** Bytes a leaf spends around its payload: array head, version, id, 9-byte timestamp, bstr head. */
const LEAF_OVERHEAD = 1 + 1 + (1 + ID_SIZE) + 9 + 3;
/** Largest payload accepted: a leaf (with any timestamp) then still fits an entry bundle. */
export const MAX_PAYLOAD_SIZE = MAX_ENTRY_SIZE - LEAF_OVERHEAD;

export interface LeafFields {
  /** 16-byte entry id (UUIDv7). */
  readonly id: Uint8Array;
  /** Server timestamp, milliseconds since the Unix epoch. */
  readonly timestamp: number;
}

export interface Leaf extends LeafFields {
  readonly payload: Uint8Array;
}

// CBOR head: major type in the top 3 bits, then the shortest argument encoding.
function headSize(value: number): number {
  if (value < 24) return 1;
  if (value < 0x100) return 2;
  if (value < 0x10000) return 3;
  if (value < 0x100000000) return 5;
  return 9;
}

function writeHead(out: Uint8Array, at: number, major: number, value: number): number {
  const mt = major * 32;
  if (value < 24) {
    out[at] = mt + value;
    return at + 1;
  }
  let bytes: number;
  if (value < 0x100) {
    out[at] = mt + 24;
    bytes = 1;
  } else if (value < 0x10000) {
    out[at] = mt + 25;
    bytes = 2;
  } else if (value < 0x100000000) {
    out[at] = mt + 26;
    bytes = 4;
  } else {
    out[at] = mt + 27;
    bytes = 8;
  }
  // Big-endian, least significant byte last; division keeps values above 2^32 exact.
  let v = value;
  for (let i = bytes; i >= 1; i--) {
    out[at + i] = v % 256;
    v = Math.floor(v / 256);
  }
  return at + 1 + bytes;
}

function checkFields(fields: LeafFields): void {
  check(fields.id.length === ID_SIZE, "MALFORMED", `entry id must be ${ID_SIZE} bytes`);
  check(
    Number.isSafeInteger(fields.timestamp) && fields.timestamp >= 0,
    "OUT_OF_RANGE",
    "timestamp must be a non-negative integer number of milliseconds",
  );
}

/** Encodes into a fresh buffer, leaving `prefix` bytes free at its start. */
function encode(fields: LeafFields, payload: Uint8Array | undefined, prefix = 0): Uint8Array {
  checkFields(fields);
  const items = payload === undefined ? 3 : 4;
  const size =
    1 +
    1 +
    1 +
    ID_SIZE +
    headSize(fields.timestamp) +
    (payload === undefined ? 0 : headSize(payload.length) + payload.length);
  const out = new Uint8Array(prefix + size);
  let at = writeHead(out, prefix, 4, items);
  at = writeHead(out, at, 0, LEAF_VERSION);
  at = writeHead(out, at, 2, ID_SIZE);
  out.set(fields.id, at);
  at += ID_SIZE;
  at = writeHead(out, at, 0, fields.timestamp);
  if (payload !== undefined) {
    at = writeHead(out, at, 2, payload.length);
    out.set(payload, at);
  }
  return out;
}

function checkPayload(payload: Uint8Array): void {
  check(
    payload.length <= MAX_PAYLOAD_SIZE,
    "TOO_LARGE",
    `payload is ${payload.length} bytes; the limit is ${MAX_PAYLOAD_SIZE} bytes (a leaf must fit a 65,535-byte entry bundle slot)`,
  );
}

/**
 * The leaf bytes and their RFC 6962 leaf hash, encoded once into a buffer that starts with the
 * 0x00 leaf prefix (the sequencer's hot path: no second copy of the payload for hashing).
 */
export function encodeLeafAndHash(leaf: Leaf): { leaf: Uint8Array; leafHash: Uint8Array } {
  checkPayload(leaf.payload);
  const buf = encode(leaf, leaf.payload, 1); // buf[0] = 0x00, the RFC 6962 leaf prefix
  return { leaf: buf.subarray(1), leafHash: sha256(buf) };
}

/** The leaf bytes for an entry. Payloads over MAX_PAYLOAD_SIZE are TOO_LARGE. */
export function encodeLeaf(leaf: Leaf): Uint8Array {
  checkPayload(leaf.payload);
  return encode(leaf, leaf.payload);
}

/**
 * A receipt's `extra`: `[1, id, timestamp, leafHash]` — everything of the leaf but the payload,
 * plus the leaf hash, so a receipt proves inclusion of that leaf hash on its own and, given the
 * payload, proves it is exactly that entry. Without `leafHash`: `[1, id, timestamp]`.
 */
export function encodeLeafFields(fields: LeafFields & { leafHash?: Uint8Array }): Uint8Array {
  if (fields.leafHash === undefined) return encode(fields, undefined);
  check(fields.leafHash.length === 32, "MALFORMED", "leaf hash must be 32 bytes");
  return encode(fields, fields.leafHash);
}

/** Rebuilds the leaf from a receipt's `extra` and the payload. */
export function leafFromFields(extra: Uint8Array, payload: Uint8Array): Uint8Array {
  const { id, timestamp } = decodeLeafFields(extra);
  return encodeLeaf({ id, timestamp, payload });
}

function decode(bytes: Uint8Array, items: 3 | 4): Leaf {
  const fail = (why: string) => new VellumError("MALFORMED", `leaf: ${why}`);
  let at = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const readHead = (major: number, what: string): number => {
    if (at >= bytes.length) throw fail(`truncated before ${what}`);
    const b = bytes[at]!;
    if (Math.floor(b / 32) !== major) throw fail(`${what} has the wrong CBOR type`);
    const info = b % 32;
    at++;
    let value: number;
    let need = 0;
    if (info < 24) value = info;
    else if (info === 24) need = 1;
    else if (info === 25) need = 2;
    else if (info === 26) need = 4;
    else if (info === 27) need = 8;
    else throw fail(`${what} has an indefinite or reserved length`);
    if (need > 0) {
      if (at + need > bytes.length) throw fail(`truncated in ${what}`);
      if (need === 1) value = bytes[at]!;
      else if (need === 2) value = view.getUint16(at);
      else if (need === 4) value = view.getUint32(at);
      else value = view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
      at += need;
    }
    if (!Number.isSafeInteger(value!)) throw fail(`${what} exceeds 2^53-1`);
    if (headSize(value!) !== 1 + need) throw fail(`${what} is not in shortest form`);
    return value!;
  };
  if (readHead(4, "array") !== items) throw fail(`expected an array of ${items}`);
  if (readHead(0, "version") !== LEAF_VERSION) throw fail(`unknown version`);
  if (readHead(2, "id") !== ID_SIZE) throw fail(`id must be ${ID_SIZE} bytes`);
  if (at + ID_SIZE > bytes.length) throw fail("truncated in id");
  const id = bytes.slice(at, at + ID_SIZE);
  at += ID_SIZE;
  const timestamp = readHead(0, "timestamp");
  let payload = new Uint8Array(0);
  if (items === 4) {
    const length = readHead(2, "payload");
    if (at + length > bytes.length) throw fail("truncated in payload");
    payload = bytes.slice(at, at + length);
    at += length;
  }
  if (at !== bytes.length) throw fail("trailing bytes");
  return { id, timestamp, payload };
}

/** Decodes a leaf; anything but the canonical encoding is MALFORMED. */
export function decodeLeaf(bytes: Uint8Array): Leaf {
  return decode(bytes, 4);
}

/** Decodes a receipt's `extra`: `[1, id, timestamp]` or `[1, id, timestamp, leafHash]`. */
export function decodeLeafFields(bytes: Uint8Array): LeafFields & { leafHash?: Uint8Array } {
  if (bytes[0] === 0x83) {
    const { id, timestamp } = decode(bytes, 3);
    return { id, timestamp };
  }
  const { id, timestamp, payload } = decode(bytes, 4);
  check(payload.length === 32, "MALFORMED", "receipt extra: the leaf hash must be 32 bytes");
  return { id, timestamp, leafHash: payload };
}

// ---- UUID text form (RFC 9562 §4): 8-4-4-4-12 lowercase hex ----

export function formatUuid(id: Uint8Array): string {
  check(id.length === ID_SIZE, "MALFORMED", `entry id must be ${ID_SIZE} bytes`);
  const h = hexEncode(id);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function parseUuid(text: string): Uint8Array {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text)) {
    throw new VellumError("MALFORMED", "entry id must be a lowercase UUID (8-4-4-4-12 hex)");
  }
  return hexDecode(text.replaceAll("-", ""));
}

/** The millisecond timestamp a UUIDv7 carries in its first 48 bits. */
export function uuidV7Time(id: Uint8Array): number {
  let ms = 0;
  for (let i = 0; i < 6; i++) ms = ms * 256 + id[i]!;
  return ms;
}
