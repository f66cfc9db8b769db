/**
 * @module
 * C2SP tlog-checkpoint v1.0.0 §Note text: the body of a checkpoint note is
 *   <origin>\n<tree size, canonical decimal>\n<base64 RFC 6962 root hash>\n[<extension line>\n...]
 * and §Signatures: the log's key name should equal the origin, and clients ignore signatures
 * they do not know (witness cosignatures ride along on every witnessed checkpoint).
 *
 * Invariants:
 * - the origin is non-empty; the size is a canonical decimal no larger than 2^53-1; the root is
 *   canonical padded base64 of exactly 32 bytes; extension lines are non-empty.
 * - no line holds an ASCII control character (the note rules), so text always round-trips:
 *   formatCheckpoint(parseCheckpoint(t)) === t.
 * - openCheckpoint reads the body only after the log's signature verified, and requires the
 *   origin to equal the log key's name.
 */
import { base64DecodeFixed, base64Encode, clip, parseDecimal } from "./bytes.js";
import { check } from "./errors.js";
import type { NoteVerifier } from "./keys.js";
import { type NoteSignature, type VerifiedSignature, verifyKnownSignatures } from "./note.js";
import { HASH_SIZE } from "./rfc6962.js";

export interface Checkpoint {
  /** The log's identity, e.g. `example.com/log42`. */
  readonly origin: string;
  /** Number of leaves. */
  readonly size: number;
  /** RFC 6962 root hash of the first `size` leaves (32 bytes). */
  readonly rootHash: Uint8Array;
  /** Opaque extension lines (without newlines); discouraged by the spec, usually empty. */
  readonly extensions: readonly string[];
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The checkpoint body (note text) exactly as signed. */
  readonly text: string;
  /** Verified signatures: the log's, then any verified witness cosignatures, in note order. */
  readonly signatures: readonly VerifiedSignature[];
  /** Signatures by keys the caller did not pass (ignored, kept for relaying). */
  readonly unverified: readonly NoteSignature[];
}

// ASCII control characters (newline included: lines never hold one) and DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkLine(line: string, what: string): void {
  check(line.length > 0, "MALFORMED", `checkpoint ${what} is empty`);
  check(!CONTROL.test(line), "MALFORMED", `checkpoint ${what} holds a control character`);
}

/** Parses a checkpoint body (the note text, ending in a newline). Throws MALFORMED. */
export function parseCheckpoint(text: string): Checkpoint {
  check(typeof text === "string", "MALFORMED", "checkpoint must be a string");
  check(text.endsWith("\n"), "MALFORMED", "checkpoint text must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  check(lines.length >= 3, "MALFORMED", "checkpoint needs origin, size and root hash lines");
  const [origin, sizeText, rootText, ...extensions] = lines as [
    string,
    string,
    string,
    ...string[],
  ];
  checkLine(origin, "origin");
  const size = parseDecimal(sizeText, "checkpoint tree size");
  const rootHash = base64DecodeFixed(rootText, HASH_SIZE, "checkpoint root hash");
  for (const [i, line] of extensions.entries()) checkLine(line, `extension line ${i + 1}`);
  return { origin, size, rootHash, extensions };
}

/** Writes a checkpoint body. Throws MALFORMED or OUT_OF_RANGE for values it cannot write. */
export function formatCheckpoint(cp: Checkpoint): string {
  checkLine(cp.origin, "origin");
  check(
    Number.isSafeInteger(cp.size) && cp.size >= 0,
    "OUT_OF_RANGE",
    `checkpoint size must be an integer in [0, 2^53-1], got ${cp.size}`,
  );
  check(cp.rootHash.length === HASH_SIZE, "MALFORMED", "checkpoint root hash must be 32 bytes");
  for (const [i, line] of cp.extensions.entries()) checkLine(line, `extension line ${i + 1}`);
  const ext = cp.extensions.map((line) => `${line}\n`).join("");
  return `${cp.origin}\n${cp.size}\n${base64Encode(cp.rootHash)}\n${ext}`;
}

/**
 * Verifies a checkpoint note with the log's key (whose name must equal the origin) and,
 * optionally, other keys (e.g. witness cosigners), then parses its body. Throws
 * NO_KNOWN_SIGNATURE if the log did not sign, BAD_SIGNATURE if any known key's signature fails,
 * MALFORMED for a bad note or body or an origin other than the log key's name.
 */
export function openCheckpoint(
  note: string | Uint8Array,
  logVerifier: NoteVerifier,
  otherVerifiers: readonly NoteVerifier[] = [],
): OpenedCheckpoint {
  const verified = verifyKnownSignatures(note, [logVerifier, ...otherVerifiers]);
  check(
    verified.signatures.some((s) => s.name === logVerifier.name && s.keyId === logVerifier.keyId),
    "NO_KNOWN_SIGNATURE",
    `checkpoint is not signed by the log key ${logVerifier.name}`,
  );
  const checkpoint = parseCheckpoint(verified.text);
  check(
    checkpoint.origin === logVerifier.name,
    "MALFORMED",
    `checkpoint origin "${clip(checkpoint.origin)}" is not the log key name "${logVerifier.name}"`,
  );
  return {
    checkpoint,
    text: verified.text,
    signatures: verified.signatures,
    unverified: verified.unverified,
  };
}
