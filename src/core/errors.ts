/**
 * @module
 * One error type for the whole project. Callers branch on `code`, never on the message; the
 * message says what was wrong and, where it helps, what to do. Codes are stable: the HTTP layer
 * maps them to status codes and metric labels in one place.
 */

export type ErrorCode =
  // Malformed input that does not parse: bad base64, bad decimal, bad line structure.
  | "MALFORMED"
  // A numeric argument outside its valid range (index >= size, size beyond 2^53-1, ...).
  | "OUT_OF_RANGE"
  // A resource or argument larger than a documented limit.
  | "TOO_LARGE"
  // A proof has the wrong number of hashes for the (index, size) or (m, n) it claims.
  | "PROOF_LENGTH"
  // A proof recomputes a root different from the one it should prove.
  | "PROOF_MISMATCH"
  // A signature by a known key does not verify.
  | "BAD_SIGNATURE"
  // None of the verifier keys the caller trusts signed the note.
  | "NO_KNOWN_SIGNATURE"
  // A key in text form does not parse, has an unknown type, or its key id does not match.
  | "BAD_KEY"
  // A witness policy's quorum is not met by the valid cosignatures present.
  | "QUORUM_NOT_MET"
  // Two signed statements that cannot both be true (e.g. checkpoints that are not consistent).
  | "INCONSISTENT"
  // An internal invariant failed: a bug, never the caller's fault.
  | "INTERNAL";

export class VellumError extends Error {
  override readonly name = "VellumError";
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Throws `VellumError(code, message)` unless `condition` holds. */
export function check(condition: unknown, code: ErrorCode, message: string): asserts condition {
  if (!condition) throw new VellumError(code, message);
}

export function isVellumError(e: unknown, code?: ErrorCode): e is VellumError {
  return e instanceof VellumError && (code === undefined || e.code === code);
}
