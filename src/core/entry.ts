/**
 * @module
 * Vellum's leaf encoding: what a Merkle leaf commits to for each entry, as deterministic CBOR
 * (RFC 8949 §4.2.1: shortest-form heads, definite lengths), so any standard CBOR decoder reads a
 * leaf out of an entry bundle, and none of its parts can change after the fact. Two versions,
 * both valid forever (a log holds whichever each entry was written with):
 *
 *   leaf  = [1, id, timestamp, payload]             ; version 1: no submitter
 *         / [2, id, timestamp, submitter, payload]  ; version 2: who submitted it
 *   id    = bstr .size 16                           ; UUIDv7, big-endian, as RFC 9562 lays it out
 *   timestamp = uint                                ; server time, milliseconds since the Unix epoch
 *   submitter = tstr .size (1..64)                  ; printable ASCII: the submitting token's id
 *   payload   = bstr                                ; the submitted bytes, opaque
 *
 * The version follows from the fields: an entry with a submitter is version 2, without one
 * version 1 (old data, and in-process appends that no token made).
 *
 * The receipt's `extra` (C2SP tlog-proof) holds the same fields without the payload, plus the
 * leaf hash — `[1, id, timestamp, leafHash]` or `[2, id, timestamp, submitter, leafHash]` — so the
 * receipt proves that leaf hash on its own and a verifier holding the payload can rebuild the
 * exact leaf (submitter included: a changed submitter changes the leaf hash).
 *
 * A new entry's payload is at most MAX_PAYLOAD_SIZE bytes, so that its leaf fits an entry bundle
 * (65,535 bytes) with any timestamp and the longest submitter. Encoding refuses only a leaf that
 * does not fit: version-1 leaves written under the older, larger limit still rebuild. Decoding is
 * strict: anything but the canonical encoding is MALFORMED.
 */
import { hexDecode, hexEncode } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { check, VellumError } from "./errors.js";
import { MAX_ENTRY_SIZE } from "./tiles.js";

/** Leaf (and extra) versions: 1 without a submitter, 2 with one. */
export const LEAF_V1 = 1;
export const LEAF_V2 = 2;
export const ID_SIZE = 16;
/** Longest submitter, in bytes (Vellum's token ids are 16). */
export const MAX_SUBMITTER_SIZE = 64;

/**
 * Bytes a leaf spends around its payload at most: array head, version, id, 9-byte timestamp,
 * the longest submitter with its 2-byte head, the payload's 3-byte bstr head.
 */
const LEAF_OVERHEAD = 1 + 1 + (1 + ID_SIZE) + 9 + (2 + MAX_SUBMITTER_SIZE) + 3;
/** Largest payload accepted for a new entry: its leaf then fits an entry bundle, whatever else. */
export const MAX_PAYLOAD_SIZE = MAX_ENTRY_SIZE - LEAF_OVERHEAD;

export interface LeafFields {
  /** 16-byte entry id (UUIDv7). */
  readonly id: Uint8Array;
  /** Server timestamp, milliseconds since the Unix epoch. */
  readonly timestamp: number;
  /** Who submitted the entry (the token's public id): version 2. Absent in version 1. */
  readonly submitter?: string;
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

/** A submitter: 1 to 64 characters of printable ASCII (0x21-0x7E), so its bytes are its text. */
function validSubmitter(s: string): boolean {
  if (s.length === 0 || s.length > MAX_SUBMITTER_SIZE) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Whether `s` can be an entry's submitter (for callers that check before submitting). */
export function isValidSubmitter(s: string): boolean {
  return typeof s === "string" && validSubmitter(s);
}

// Plain ifs, not check(): these run for every entry sequenced, and check()'s messages would be
// built on every call.
function checkFields(fields: LeafFields): void {
  if (fields.id.length !== ID_SIZE) {
    throw new VellumError("MALFORMED", `entry id must be ${ID_SIZE} bytes`);
  }
  checkTimeAndSubmitter(fields);
}

function checkTimeAndSubmitter(fields: Omit<LeafFields, "id">): void {
  if (!Number.isSafeInteger(fields.timestamp) || fields.timestamp < 0) {
    throw new VellumError(
      "OUT_OF_RANGE",
      "timestamp must be a non-negative integer number of milliseconds",
    );
  }
  if (fields.submitter !== undefined && !validSubmitter(fields.submitter)) {
    throw new VellumError(
      "MALFORMED",
      `submitter must be 1-${MAX_SUBMITTER_SIZE} characters of printable ASCII`,
    );
  }
}

/** Encoded size of the fields and, if given, the final bstr of `last` bytes. */
function encodedSize(fields: Omit<LeafFields, "id">, last: number | undefined): number {
  const s = fields.submitter;
  return (
    1 +
    1 +
    1 +
    ID_SIZE +
    headSize(fields.timestamp) +
    (s === undefined ? 0 : headSize(s.length) + s.length) +
    (last === undefined ? 0 : headSize(last) + last)
  );
}

/**
 * Encodes the fields then `last` (the payload, or a receipt's leaf hash) into a fresh buffer,
 * leaving `prefix` bytes free at its start.
 */
function encode(fields: LeafFields, last: Uint8Array | undefined, prefix = 0): Uint8Array {
  checkFields(fields);
  const out = new Uint8Array(prefix + encodedSize(fields, last?.length));
  encodeInto(fields, last, out, prefix);
  return out;
}

/** Writes the fields then `last` at `out[at..]` (fields checked); returns where it ended. */
function encodeInto(
  fields: LeafFields,
  last: Uint8Array | undefined,
  out: Uint8Array,
  start: number,
): number {
  const s = fields.submitter;
  const items = (s === undefined ? 3 : 4) + (last === undefined ? 0 : 1);
  let at = writeHead(out, start, 4, items);
  at = writeHead(out, at, 0, s === undefined ? LEAF_V1 : LEAF_V2);
  at = writeHead(out, at, 2, ID_SIZE);
  out.set(fields.id, at);
  at += ID_SIZE;
  at = writeHead(out, at, 0, fields.timestamp);
  if (s !== undefined) {
    at = writeHead(out, at, 3, s.length);
    for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
    at += s.length;
  }
  if (last !== undefined) {
    at = writeHead(out, at, 2, last.length);
    out.set(last, at);
    at += last.length;
  }
  return at;
}

/**
 * The size of a leaf's encoding (its id is 16 bytes by definition), for a caller that packs many
 * leaves into one buffer (`encodeLeafInto`). Refuses what `encodeLeaf` refuses but a bad id.
 */
export function leafSize(leaf: Omit<Leaf, "id">): number {
  checkTimeAndSubmitter(leaf);
  const size = encodedSize(leaf, leaf.payload.length);
  if (size > MAX_ENTRY_SIZE) throw tooLarge(leaf.payload.length);
  return size;
}

/**
 * Encodes a leaf at `out[at..]` (room for `leafSize(leaf)` bytes; that checked all but the id)
 * and returns where it ends: the same bytes as `encodeLeaf`.
 */
export function encodeLeafInto(leaf: Leaf, out: Uint8Array, at: number): number {
  if (leaf.id.length !== ID_SIZE) {
    throw new VellumError("MALFORMED", `entry id must be ${ID_SIZE} bytes`);
  }
  return encodeInto(leaf, leaf.payload, out, at);
}

/** Refuses a leaf that would not fit an entry bundle slot (TOO_LARGE). */
function checkFits(leaf: Leaf): void {
  if (leaf.payload.length <= MAX_PAYLOAD_SIZE) return; // always fits: the common case, no sums
  if (encodedSize(leaf, leaf.payload.length) > MAX_ENTRY_SIZE) throw tooLarge(leaf.payload.length);
}

function tooLarge(payloadSize: number): VellumError {
  return new VellumError(
    "TOO_LARGE",
    `payload is ${payloadSize} bytes; the limit is ${MAX_PAYLOAD_SIZE} bytes (a leaf must fit a 65,535-byte entry bundle slot)`,
  );
}

/**
 * The leaf bytes and their RFC 6962 leaf hash, encoded once into a buffer that starts with the
 * 0x00 leaf prefix (the sequencer's hot path: no second copy of the payload for hashing).
 */
export function encodeLeafAndHash(leaf: Leaf): { leaf: Uint8Array; leafHash: Uint8Array } {
  checkFits(leaf);
  const buf = encode(leaf, leaf.payload, 1); // buf[0] = 0x00, the RFC 6962 leaf prefix
  return { leaf: buf.subarray(1), leafHash: sha256(buf) };
}

/**
 * The leaf bytes for an entry: version 2 with a submitter, else version 1. A leaf that would not
 * fit an entry bundle is TOO_LARGE (new entries are held to MAX_PAYLOAD_SIZE before this).
 */
export function encodeLeaf(leaf: Leaf): Uint8Array {
  checkFits(leaf);
  return encode(leaf, leaf.payload);
}

/**
 * A receipt's `extra`: `[1, id, timestamp, leafHash]` or `[2, id, timestamp, submitter,
 * leafHash]` — everything of the leaf but the payload, plus the leaf hash, so a receipt proves
 * inclusion of that leaf hash on its own and, given the payload, proves it is exactly that entry.
 * Without `leafHash`: `[1, id, timestamp]` or `[2, id, timestamp, submitter]`.
 */
export function encodeLeafFields(fields: LeafFields & { leafHash?: Uint8Array }): Uint8Array {
  if (fields.leafHash === undefined) return encode(fields, undefined);
  check(fields.leafHash.length === 32, "MALFORMED", "leaf hash must be 32 bytes");
  return encode(fields, fields.leafHash);
}

/** Rebuilds the leaf from a receipt's `extra` and the payload (same version as the extra). */
export function leafFromFields(extra: Uint8Array, payload: Uint8Array): Uint8Array {
  const { id, timestamp, submitter } = decodeLeafFields(extra);
  return encodeLeaf(
    submitter === undefined ? { id, timestamp, payload } : { id, timestamp, submitter, payload },
  );
}

interface Decoded extends LeafFields {
  /** The final bstr (payload or leaf hash), if the array has it. */
  readonly last: Uint8Array | undefined;
}

/**
 * Where decode() is in its input: one per module, not closures and a DataView per call (the
 * index decodes every entry it reads). decode() runs to the end without yielding, so one is
 * enough.
 */
const cursor: { bytes: Uint8Array; at: number; what: string } = {
  bytes: new Uint8Array(0),
  at: 0,
  what: "",
};

function malformed(why: string): VellumError {
  return new VellumError("MALFORMED", `${cursor.what}: ${why}`);
}

/** Reads a CBOR head of `major` type at the cursor; its argument, in shortest form. */
function readHead(major: number, name: string): number {
  const bytes = cursor.bytes;
  let at = cursor.at;
  if (at >= bytes.length) throw malformed(`truncated before ${name}`);
  const b = bytes[at]!;
  if (b >>> 5 !== major) throw malformed(`${name} has the wrong CBOR type`);
  const info = b & 31;
  at++;
  let value: number;
  let need = 0;
  if (info < 24) value = info;
  else if (info === 24) need = 1;
  else if (info === 25) need = 2;
  else if (info === 26) need = 4;
  else if (info === 27) need = 8;
  else throw malformed(`${name} has an indefinite or reserved length`);
  if (need > 0) {
    if (at + need > bytes.length) throw malformed(`truncated in ${name}`);
    value = 0;
    for (let i = 0; i < need; i++) value = value * 256 + bytes[at + i]!;
    at += need;
  }
  cursor.at = at;
  if (!Number.isSafeInteger(value!)) throw malformed(`${name} exceeds 2^53-1`);
  if (headSize(value!) !== 1 + need) throw malformed(`${name} is not in shortest form`);
  return value!;
}

/**
 * Decodes a leaf (`last` "required": its payload) or an extra (`last` "optional": its leaf hash).
 * Version 1 is [1, id, timestamp, last?], version 2 [2, id, timestamp, submitter, last?].
 */
function decode(
  bytes: Uint8Array,
  last: "required" | "optional",
  what: string,
  /** The last item as a view of `bytes` rather than a copy (the caller only reads it, at once). */
  view = false,
): Decoded {
  cursor.bytes = bytes;
  cursor.at = 0;
  cursor.what = what;
  try {
    const items = readHead(4, "array");
    const version = readHead(0, "version");
    if (version !== LEAF_V1 && version !== LEAF_V2) throw malformed(`unknown version ${version}`);
    const base = version === LEAF_V1 ? 3 : 4;
    if (items !== base + 1 && (last === "required" || items !== base)) {
      const arities = last === "required" ? `${base + 1}` : `${base} or ${base + 1}`;
      throw malformed(`version ${version} expects an array of ${arities}`);
    }
    if (readHead(2, "id") !== ID_SIZE) throw malformed(`id must be ${ID_SIZE} bytes`);
    if (cursor.at + ID_SIZE > bytes.length) throw malformed("truncated in id");
    const id = bytes.slice(cursor.at, cursor.at + ID_SIZE);
    cursor.at += ID_SIZE;
    const timestamp = readHead(0, "timestamp");
    let submitter: string | undefined;
    if (version === LEAF_V2) {
      const length = readHead(3, "submitter");
      if (length === 0 || length > MAX_SUBMITTER_SIZE) {
        throw malformed(`submitter must be 1-${MAX_SUBMITTER_SIZE} bytes`);
      }
      const at = cursor.at;
      if (at + length > bytes.length) throw malformed("truncated in submitter");
      submitter = "";
      for (let i = 0; i < length; i++) {
        const c = bytes[at + i]!;
        if (c < 0x21 || c > 0x7e) throw malformed("submitter must be printable ASCII");
        submitter += String.fromCharCode(c);
      }
      cursor.at += length;
    }
    let tail: Uint8Array | undefined;
    if (items === base + 1) {
      const name = last === "required" ? "payload" : "leaf hash";
      const length = readHead(2, name);
      const at = cursor.at;
      if (at + length > bytes.length) throw malformed(`truncated in ${name}`);
      tail = view ? bytes.subarray(at, at + length) : bytes.slice(at, at + length);
      cursor.at += length;
    }
    if (cursor.at !== bytes.length) throw malformed("trailing bytes");
    return submitter === undefined
      ? { id, timestamp, last: tail }
      : { id, timestamp, submitter, last: tail };
  } finally {
    // Not kept alive by the cursor until the next decode.
    cursor.bytes = EMPTY_INPUT;
  }
}

const EMPTY_INPUT: Uint8Array = new Uint8Array(0);

/** Decodes a leaf of either version; anything but the canonical encoding is MALFORMED. */
export function decodeLeaf(bytes: Uint8Array): Leaf {
  const { id, timestamp, submitter, last } = decode(bytes, "required", "leaf");
  const payload = last!;
  return submitter === undefined
    ? { id, timestamp, payload }
    : { id, timestamp, submitter, payload };
}

/**
 * A leaf's payload as a view of the leaf's bytes, decoded and checked as decodeLeaf does: for a
 * reader that takes the payload and lets the leaf go (the index reads every entry's payload, and
 * a copy of each was an allocation outside V8's heap, swept later).
 */
export function leafPayload(bytes: Uint8Array): Uint8Array {
  return decode(bytes, "required", "leaf", true).last!;
}

/**
 * Decodes a receipt's `extra`: `[1, id, timestamp, leafHash?]` or
 * `[2, id, timestamp, submitter, leafHash?]`.
 */
export function decodeLeafFields(bytes: Uint8Array): LeafFields & { leafHash?: Uint8Array } {
  const { id, timestamp, submitter, last } = decode(bytes, "optional", "receipt extra");
  const fields = submitter === undefined ? { id, timestamp } : { id, timestamp, submitter };
  if (last === undefined) return fields;
  check(last.length === 32, "MALFORMED", "receipt extra: the leaf hash must be 32 bytes");
  return { ...fields, leafHash: last };
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
