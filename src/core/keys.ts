/**
 * @module
 * Ed25519 keys for signed notes (C2SP signed-note v1.0.0 §Signatures, §Ed25519 signatures) and
 * for timestamped witness cosignatures (C2SP tlog-cosignature §Format, §Ed25519 signed message).
 *
 * Text forms:
 *   verifier key  `<name>+<8 lowercase hex key id>+<base64(type || 32-byte public key)>`
 *   signer key    `PRIVATE+KEY+<name>+<8 hex key id>+<base64(type || 32-byte seed)>`
 *                 (the golang.org/x/mod/sumdb/note format)
 *
 * Invariants:
 * - key id = first 4 bytes, big-endian, of SHA-256(name || 0x0A || type || public key); it is
 *   always recomputed from the public key (derived from the seed for signer keys) and compared
 *   with the one written in the key, so a key whose id does not match never loads.
 * - key names are non-empty, contain no Unicode whitespace, no `+`, no ASCII control character
 *   and no unpaired surrogate (so they survive UTF-8 and a note's signature line).
 * - only two signature types load: 0x01 (Ed25519 over the note text) and 0x04 (tlog-cosignature
 *   v1: Ed25519 over `cosignature/v1\ntime <t>\n` || note text, signature = 8-byte BE time ||
 *   64-byte Ed25519 signature). Anything else is BAD_KEY.
 * - no clock and no randomness: key generation takes the seed, cosigners take the time.
 *
 * The 0x04 message rule lives here (not in cosignature.ts) so that `verifierFromKey` can build
 * either kind without an import cycle; cosignature.ts re-exports it with the C2SP-facing API.
 *
 * Over 400 lines: the two key kinds share the text forms, key ids and checks; half of the file
 * is the argument checks that name what is wrong with a key.
 */
import {
  base64Decode,
  base64Encode,
  concatBytes,
  getUint64,
  putUint64,
  utf8Encode,
} from "./bytes.js";
import { cryptoProvider, sha256 } from "./crypto.js";
import { check, VellumError } from "./errors.js";

/** Signature type 0x01: plain Ed25519 note signatures (signed-note §Ed25519 signatures). */
export const SIG_TYPE_ED25519 = 0x01;
/** Signature type 0x04: timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature). */
export const SIG_TYPE_COSIGNATURE = 0x04;
export type SignatureType = typeof SIG_TYPE_ED25519 | typeof SIG_TYPE_COSIGNATURE;

export const ED25519_PUBLIC_KEY_SIZE = 32;
export const ED25519_SEED_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;
/** A cosignature: 8-byte big-endian POSIX seconds, then the 64-byte Ed25519 signature. */
export const COSIGNATURE_SIZE = 8 + ED25519_SIGNATURE_SIZE;

const SIGNER_KEY_PREFIX = "PRIVATE+KEY+";

/** Signs note text with one key, in the style of Go's note.Signer. */
export interface NoteSigner {
  readonly name: string;
  /** The 32-bit key id (unsigned). */
  readonly keyId: number;
  /** The signature bytes that follow the 4-byte key id in the note's signature line. */
  sign(message: Uint8Array): Uint8Array;
}

/** Verifies note signatures of one key, in the style of Go's note.Verifier. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  /**
   * Whether `signature` (the bytes after the key id) is valid for `message` (the note text,
   * UTF-8, including its final newline). Returns false, never throws, on malformed input.
   */
  verify(message: Uint8Array, signature: Uint8Array): boolean;
  /** For timestamped types (0x04): the POSIX seconds a signature carries, if well formed. */
  signatureTimestamp?(signature: Uint8Array): number | undefined;
}

/** A signer built by this module: it also knows its public key and verifier key. */
export interface Ed25519NoteSigner extends NoteSigner {
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
  /** The verifier key text others need to check this signer's signatures. */
  readonly verifierKey: string;
  verifier(): NoteVerifier;
}

/** A type 0x04 signer bound to a time: `sign()` returns 8-byte BE time || 64-byte signature. */
export interface Cosigner extends Ed25519NoteSigner {
  readonly type: typeof SIG_TYPE_COSIGNATURE;
  /** POSIX seconds written into every cosignature this signer makes. */
  readonly time: number;
  /** The same key bound to another time (no key derivation is repeated). */
  at(time: number): Cosigner;
}

/** A parsed verifier key. */
export interface VerifierKey {
  readonly name: string;
  readonly keyId: number;
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
}

/** A parsed signer key: the seed is secret. */
export interface SignerKey extends VerifierKey {
  readonly seed: Uint8Array;
}

// Unicode White_Space as Go's unicode.IsSpace sees it: JavaScript's \s plus U+0085 (NEL).
const SPACE = /[\s\u0085]/u;
// ASCII control characters (C0 and DEL) and unpaired UTF-16 surrogates.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_OR_LONE_SURROGATE = /[\u0000-\u001f\u007f\uD800-\uDFFF]/u;

/** Whether `name` may name a note key: non-empty, no whitespace, no `+`, no control chars. */
export function isValidKeyName(name: string): boolean {
  return (
    typeof name === "string" &&
    name.length > 0 &&
    !name.includes("+") &&
    !SPACE.test(name) &&
    !CONTROL_OR_LONE_SURROGATE.test(name)
  );
}

function checkKeyName(name: string): void {
  check(isValidKeyName(name), "BAD_KEY", "key name must be non-empty, without spaces or '+'");
}

function checkType(type: number): asserts type is SignatureType {
  check(
    type === SIG_TYPE_ED25519 || type === SIG_TYPE_COSIGNATURE,
    "BAD_KEY",
    `unsupported signature type 0x${type.toString(16).padStart(2, "0")} (want 0x01 or 0x04)`,
  );
}

/** Key id: the first 4 bytes (big-endian) of SHA-256(name || 0x0A || type || publicKey). */
export function computeKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const digest = sha256(concatBytes(utf8Encode(name), Uint8Array.of(0x0a, type), publicKey));
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0);
}

/** The 8-digit lowercase hex form of a key id. */
export function formatKeyId(keyId: number): string {
  check(
    Number.isInteger(keyId) && keyId >= 0 && keyId <= 0xffffffff,
    "BAD_KEY",
    "key id must be a uint32",
  );
  return keyId.toString(16).padStart(8, "0");
}

function parseKeyId(text: string): number {
  check(/^[0-9a-f]{8}$/.test(text), "BAD_KEY", "key id must be 8 lowercase hex digits");
  return Number.parseInt(text, 16);
}

/** Decodes `base64(type || 32 bytes)`, turning any failure into BAD_KEY. */
function decodeTypedKey(text: string, what: string): { type: SignatureType; key: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = base64Decode(text, what);
  } catch {
    throw new VellumError("BAD_KEY", `${what} is not canonical base64`);
  }
  check(bytes.length > 0, "BAD_KEY", `${what} is empty`);
  const type = bytes[0]!;
  checkType(type);
  check(bytes.length === 33, "BAD_KEY", `${what} must be a type byte and 32 bytes`);
  return { type, key: bytes.subarray(1) };
}

/** Splits `s` at its first `+`; `rest` is undefined when there is none. */
function chop(s: string): [string, string | undefined] {
  const i = s.indexOf("+");
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/** Parses `<name>+<keyid>+<base64(type || public key)>`, checking the key id. Throws BAD_KEY. */
export function parseVerifierKey(text: string): VerifierKey {
  check(typeof text === "string", "BAD_KEY", "verifier key must be a string");
  const [name, rest] = chop(text);
  check(rest !== undefined, "BAD_KEY", "verifier key must be <name>+<key id>+<key>");
  const [idText, keyText] = chop(rest);
  check(keyText !== undefined, "BAD_KEY", "verifier key must be <name>+<key id>+<key>");
  checkKeyName(name);
  const keyId = parseKeyId(idText);
  const { type, key } = decodeTypedKey(keyText, "verifier key");
  check(
    computeKeyId(name, type, key) === keyId,
    "BAD_KEY",
    `verifier key ${name}+${idText}: key id does not match the public key`,
  );
  return { name, keyId, type, publicKey: key.slice() };
}

/** Writes a verifier key, computing its key id. */
export function formatVerifierKey(key: {
  name: string;
  type: number;
  publicKey: Uint8Array;
}): string {
  checkKeyName(key.name);
  checkType(key.type);
  check(
    key.publicKey.length === ED25519_PUBLIC_KEY_SIZE,
    "BAD_KEY",
    "Ed25519 public key must be 32 bytes",
  );
  const id = formatKeyId(computeKeyId(key.name, key.type, key.publicKey));
  return `${key.name}+${id}+${base64Encode(concatBytes(Uint8Array.of(key.type), key.publicKey))}`;
}

/**
 * Parses `PRIVATE+KEY+<name>+<keyid>+<base64(type || seed)>`, derives the public key and checks
 * the key id against it. Throws BAD_KEY; error messages never quote the key.
 */
export function parseSignerKey(text: string): SignerKey {
  check(typeof text === "string", "BAD_KEY", "signer key must be a string");
  check(text.startsWith(SIGNER_KEY_PREFIX), "BAD_KEY", "signer key must start with PRIVATE+KEY+");
  const [name, rest] = chop(text.slice(SIGNER_KEY_PREFIX.length));
  check(rest !== undefined, "BAD_KEY", "signer key must be PRIVATE+KEY+<name>+<key id>+<key>");
  const [idText, keyText] = chop(rest);
  check(keyText !== undefined, "BAD_KEY", "signer key must be PRIVATE+KEY+<name>+<key id>+<key>");
  checkKeyName(name);
  const keyId = parseKeyId(idText);
  const { type, key } = decodeTypedKey(keyText, "signer key");
  const seed = key.slice();
  const publicKey = cryptoProvider().ed25519PublicKey(seed);
  check(
    computeKeyId(name, type, publicKey) === keyId,
    "BAD_KEY",
    `signer key for ${name}: key id ${idText} does not match the key`,
  );
  return { name, keyId, type, publicKey, seed };
}

function checkSeed(seed: Uint8Array): void {
  check(
    seed instanceof Uint8Array && seed.length === ED25519_SEED_SIZE,
    "BAD_KEY",
    "Ed25519 seed must be 32 bytes",
  );
}

/** Writes a signer key in the Go sumdb/note format. The result is secret. */
export function formatSignerKey(key: { name: string; type: number; seed: Uint8Array }): string {
  checkKeyName(key.name);
  checkType(key.type);
  checkSeed(key.seed);
  const publicKey = cryptoProvider().ed25519PublicKey(key.seed);
  const id = formatKeyId(computeKeyId(key.name, key.type, publicKey));
  const body = base64Encode(concatBytes(Uint8Array.of(key.type), key.seed));
  return `${SIGNER_KEY_PREFIX}${key.name}+${id}+${body}`;
}

/**
 * A new key pair for `name` from a 32-byte seed the caller drew from a secure random source.
 * Returns both text forms; `signerKey` is secret.
 */
export function generateKey(
  name: string,
  seed: Uint8Array,
  type: SignatureType = SIG_TYPE_ED25519,
): { signerKey: string; verifierKey: string } {
  const signerKey = formatSignerKey({ name, type, seed });
  const publicKey = cryptoProvider().ed25519PublicKey(seed);
  return { signerKey, verifierKey: formatVerifierKey({ name, type, publicKey }) };
}

function checkTime(time: number): void {
  check(
    Number.isSafeInteger(time) && time >= 0,
    "OUT_OF_RANGE",
    `cosignature time must be an integer number of seconds in [0, 2^53-1], got ${time}`,
  );
}

/**
 * The message a tlog-cosignature/v1 Ed25519 signature covers:
 * `cosignature/v1\ntime <decimal seconds>\n` followed by the whole checkpoint text (every body
 * line including extension lines and the final newline, no signature lines).
 */
export function cosignatureMessage(checkpointText: string | Uint8Array, time: number): Uint8Array {
  checkTime(time);
  const body = typeof checkpointText === "string" ? utf8Encode(checkpointText) : checkpointText;
  check(
    body.length > 0 && body[body.length - 1] === 0x0a,
    "MALFORMED",
    "cosigned text must end with a newline",
  );
  return concatBytes(utf8Encode(`cosignature/v1\ntime ${time}\n`), body);
}

/** The timestamp of a 72-byte cosignature, or undefined if it is malformed or beyond 2^53-1. */
export function cosignatureTimestamp(signature: Uint8Array): number | undefined {
  if (signature.length !== COSIGNATURE_SIZE) return undefined;
  try {
    return getUint64(signature, 0, "cosignature timestamp");
  } catch {
    return undefined;
  }
}

/** A verifier for one public key of either supported type. */
export function verifierFromPublicKey(
  name: string,
  publicKey: Uint8Array,
  type: SignatureType = SIG_TYPE_ED25519,
): NoteVerifier {
  checkKeyName(name);
  checkType(type);
  check(
    publicKey.length === ED25519_PUBLIC_KEY_SIZE,
    "BAD_KEY",
    "Ed25519 public key must be 32 bytes",
  );
  const key = publicKey.slice();
  const keyId = computeKeyId(name, type, key);
  if (type === SIG_TYPE_ED25519) {
    return {
      name,
      keyId,
      verify: (message, signature) =>
        signature.length === ED25519_SIGNATURE_SIZE &&
        cryptoProvider().ed25519Verify(key, message, signature),
    };
  }
  return {
    name,
    keyId,
    verify(message, signature) {
      // Timestamps above 2^53-1 (~285 million years away) are refused as "in the future",
      // which tlog-cosignature allows; it keeps every time an exact JavaScript number.
      const time = cosignatureTimestamp(signature);
      if (time === undefined) return false;
      if (message.length === 0 || message[message.length - 1] !== 0x0a) return false;
      return cryptoProvider().ed25519Verify(
        key,
        cosignatureMessage(message, time),
        signature.subarray(8),
      );
    },
    signatureTimestamp: cosignatureTimestamp,
  };
}

/** A verifier from verifier-key text; the type byte picks plain Ed25519 or cosignature. */
export function verifierFromKey(vkey: string): NoteVerifier {
  const k = parseVerifierKey(vkey);
  return verifierFromPublicKey(k.name, k.publicKey, k.type);
}

function makeEd25519Signer(name: string, seed: Uint8Array): Ed25519NoteSigner {
  const publicKey = cryptoProvider().ed25519PublicKey(seed);
  const verifierKey = formatVerifierKey({ name, type: SIG_TYPE_ED25519, publicKey });
  return {
    name,
    keyId: computeKeyId(name, SIG_TYPE_ED25519, publicKey),
    type: SIG_TYPE_ED25519,
    publicKey,
    verifierKey,
    sign: (message) => cryptoProvider().ed25519Sign(seed, message),
    verifier: () => verifierFromPublicKey(name, publicKey, SIG_TYPE_ED25519),
  };
}

function makeCosigner(
  name: string,
  seed: Uint8Array,
  publicKey: Uint8Array,
  keyId: number,
  verifierKey: string,
  time: number,
): Cosigner {
  checkTime(time);
  return {
    name,
    keyId,
    type: SIG_TYPE_COSIGNATURE,
    publicKey,
    verifierKey,
    time,
    sign(message) {
      const out = new Uint8Array(COSIGNATURE_SIZE);
      putUint64(out, 0, time);
      out.set(cryptoProvider().ed25519Sign(seed, cosignatureMessage(message, time)), 8);
      return out;
    },
    verifier: () => verifierFromPublicKey(name, publicKey, SIG_TYPE_COSIGNATURE),
    at: (other) => makeCosigner(name, seed, publicKey, keyId, verifierKey, other),
  };
}

/**
 * A signer from a 32-byte Ed25519 seed. Type 0x01 signs note text; type 0x04 makes
 * tlog-cosignature/v1 cosignatures and needs the POSIX `time` (seconds) to put in them.
 */
export function signerFromSeed(
  name: string,
  seed: Uint8Array,
  type?: typeof SIG_TYPE_ED25519,
): Ed25519NoteSigner;
export function signerFromSeed(
  name: string,
  seed: Uint8Array,
  type: typeof SIG_TYPE_COSIGNATURE,
  time: number,
): Cosigner;
export function signerFromSeed(
  name: string,
  seed: Uint8Array,
  type?: SignatureType,
  time?: number,
): Ed25519NoteSigner;
export function signerFromSeed(
  name: string,
  seed: Uint8Array,
  type: SignatureType = SIG_TYPE_ED25519,
  time?: number,
): Ed25519NoteSigner {
  checkKeyName(name);
  checkSeed(seed);
  checkType(type);
  const secret = seed.slice();
  if (type === SIG_TYPE_ED25519) return makeEd25519Signer(name, secret);
  check(time !== undefined, "OUT_OF_RANGE", "a cosignature (type 0x04) signer needs a time");
  const publicKey = cryptoProvider().ed25519PublicKey(secret);
  const keyId = computeKeyId(name, SIG_TYPE_COSIGNATURE, publicKey);
  const verifierKey = formatVerifierKey({ name, type: SIG_TYPE_COSIGNATURE, publicKey });
  return makeCosigner(name, secret, publicKey, keyId, verifierKey, time);
}

/**
 * A signer from signer-key text. A type 0x04 key needs `time` (POSIX seconds); the result is
 * then a Cosigner.
 */
export function signerFromKey(skey: string, time?: number): Ed25519NoteSigner {
  const k = parseSignerKey(skey);
  return signerFromSeed(k.name, k.seed, k.type, time);
}
