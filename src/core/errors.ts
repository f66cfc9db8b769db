/**
 * @module
 * One error type for the whole project. Callers branch on `code`, never on the message; the
 * message says what was wrong and, where it helps, what to do. Codes are stable: the HTTP layer
 * maps them to status codes and metric labels in one place.
 */

export type ErrorCode =
  // Malformed input that does not parse: bad base64, bad decimal, bad line structure.
  | "MALFORMED"
  // A structured event that is not a valid event of its schema (OCSF): the detail names the
  // field's JSON pointer, e.g. "/actor/user/uid".
  | "INVALID_EVENT"
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
  // The thing asked for does not exist (an entry id, a leaf hash, a checkpoint size).
  | "NOT_FOUND"
  // A request contradicts what the log already holds (an idempotency key reused for another payload).
  | "CONFLICT"
  // Back-pressure: the log's queue is full, or the server's budget for request bodies in flight is
  // spent; try again later (the error carries retryAfterMs).
  | "OVERLOADED"
  // The log is closed, closing, or stopped after a storage failure; nothing was done.
  | "UNAVAILABLE"
  // The storage layer failed (I/O error, disk full); whether a write landed is unknown.
  | "STORAGE_FAILURE"
  // Stored data does not verify against the tree that commits to it (a flipped bit, a damaged
  // file): nothing was served. Never the caller's fault; the server logs and counts it.
  | "INTEGRITY_FAILURE"
  // Another process owns the data directory.
  | "LOCKED"
  // Refusal to start: stored data, signed checkpoints, key or clock disagree (rollback, restore
  // from an old backup, wrong key, clock behind the last checkpoint). Never auto-repaired.
  | "STATE_MISMATCH"
  // A request without valid credentials, or with credentials lacking a permission.
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  // A server could not be reached, or answered with something that is not the protocol.
  | "NETWORK"
  // An internal invariant failed: a bug, never the caller's fault.
  | "INTERNAL";

/**
 * Every code, at run time (the union above is the documentation). Written as a record so that
 * the compiler refuses a code missing here; src/core/problem-codes.ts builds the list of codes a
 * server may send from it, shared by the server and the client.
 */
const EVERY_CODE: Record<ErrorCode, true> = {
  MALFORMED: true,
  INVALID_EVENT: true,
  OUT_OF_RANGE: true,
  TOO_LARGE: true,
  PROOF_LENGTH: true,
  PROOF_MISMATCH: true,
  BAD_SIGNATURE: true,
  NO_KNOWN_SIGNATURE: true,
  BAD_KEY: true,
  QUORUM_NOT_MET: true,
  INCONSISTENT: true,
  NOT_FOUND: true,
  CONFLICT: true,
  OVERLOADED: true,
  UNAVAILABLE: true,
  STORAGE_FAILURE: true,
  INTEGRITY_FAILURE: true,
  LOCKED: true,
  STATE_MISMATCH: true,
  UNAUTHENTICATED: true,
  FORBIDDEN: true,
  NETWORK: true,
  INTERNAL: true,
};
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(
  Object.keys(EVERY_CODE) as ErrorCode[],
);

export class VellumError extends Error {
  override readonly name = "VellumError";
  readonly code: ErrorCode;

  /** For OVERLOADED: how long the caller should wait before retrying. */
  readonly retryAfterMs: number | undefined;
  /** For INCONSISTENT: what proves it (signed checkpoints and proofs), for a third party. */
  readonly evidence: unknown;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number; evidence?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
    this.evidence = options?.evidence;
  }
}

/** Throws `VellumError(code, message)` unless `condition` holds. */
export function check(condition: unknown, code: ErrorCode, message: string): asserts condition {
  if (!condition) throw new VellumError(code, message);
}

export function isVellumError(e: unknown, code?: ErrorCode): e is VellumError {
  return e instanceof VellumError && (code === undefined || e.code === code);
}
