/**
 * @module
 * The exit codes of every `vellum` command, in one place (README "Exit codes" repeats this
 * table, and each command's `--help` lists the ones it uses). Scripts branch on them:
 *
 *   0  done: everything asked for happened and everything checked verified
 *   1  verification failed: a receipt, signature, proof or quorum does not verify
 *   2  usage error: a bad flag, URL, file or token, or a request the server refused as asked
 *      (400, 401, 403, 404, 409, 413: sending it again would fail the same way)
 *   3  inconsistency: signed statements or stored data contradict each other — a log that
 *      misbehaved (`monitor`'s evidence; it has exited 3 on evidence since it was written), or a
 *      server refusing to start on data that disagrees with what was signed (STATE_MISMATCH:
 *      a restored backup, a rollback proven by a witness or a state mirror). Restarting it in a
 *      loop cannot help: an operator must look.
 *   4  I/O or network error: the server could not be reached or is unavailable, a file could not
 *      be read or written; trying again later may work
 *
 * Errors are classified where they are known (ExitError) or by their VellumError code.
 */
import { CommanderError } from "commander";
import { type ErrorCode, VellumError } from "../core/errors.js";

export const EXIT_OK = 0;
export const EXIT_VERIFY_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_EVIDENCE = 3;
export const EXIT_IO = 4;

export type ExitCode =
  | typeof EXIT_OK
  | typeof EXIT_VERIFY_FAILED
  | typeof EXIT_USAGE
  | typeof EXIT_EVIDENCE
  | typeof EXIT_IO;

const MEANING: Record<ExitCode, string> = {
  0: "done (everything checked verified)",
  1: "verification failed",
  2: "usage error (bad flag, URL, file or token; or the server refused the request as asked)",
  3: "inconsistency (a log's evidence written; or stored data contradicts what was signed)",
  4: "I/O or network error (server unreachable or unavailable, file unreadable; try again)",
};

/** The `--help` text listing the exit codes a command uses. */
export function exitCodesHelp(codes: readonly ExitCode[]): string {
  return `\nExit codes:\n${codes.map((c) => `  ${c}  ${MEANING[c]}\n`).join("")}`;
}

/** An error whose exit code is known where it is thrown. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const usageError = (message: string) => new ExitError(EXIT_USAGE, message);

const BY_CODE: Record<ErrorCode, ExitCode> = {
  PROOF_LENGTH: EXIT_VERIFY_FAILED,
  PROOF_MISMATCH: EXIT_VERIFY_FAILED,
  BAD_SIGNATURE: EXIT_VERIFY_FAILED,
  NO_KNOWN_SIGNATURE: EXIT_VERIFY_FAILED,
  QUORUM_NOT_MET: EXIT_VERIFY_FAILED,
  MALFORMED: EXIT_USAGE,
  INVALID_EVENT: EXIT_USAGE,
  OUT_OF_RANGE: EXIT_USAGE,
  TOO_LARGE: EXIT_USAGE,
  BAD_KEY: EXIT_USAGE,
  NOT_FOUND: EXIT_USAGE,
  CONFLICT: EXIT_USAGE,
  UNAUTHENTICATED: EXIT_USAGE,
  FORBIDDEN: EXIT_USAGE,
  STATE_MISMATCH: EXIT_EVIDENCE,
  INCONSISTENT: EXIT_EVIDENCE,
  OVERLOADED: EXIT_IO,
  UNAVAILABLE: EXIT_IO,
  STORAGE_FAILURE: EXIT_IO,
  INTEGRITY_FAILURE: EXIT_IO,
  LOCKED: EXIT_IO,
  NETWORK: EXIT_IO,
  INTERNAL: EXIT_IO,
};

/** Node's errors for a path that is not there or not a file: the caller named the wrong one. */
const USAGE_ERRNO = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ENAMETOOLONG"]);

export function exitCodeOf(e: unknown): ExitCode {
  if (e instanceof ExitError) return e.exitCode;
  if (e instanceof VellumError) return BY_CODE[e.code] ?? EXIT_IO;
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof errno === "string") return USAGE_ERRNO.has(errno) ? EXIT_USAGE : EXIT_IO;
  // A plain Error is the CLI's own refusal of what it was asked; anything else is unexpected.
  return e instanceof Error && e.constructor === Error ? EXIT_USAGE : EXIT_IO;
}

/** The one line an error is reported with: its code, if it has one, and what happened. */
export function errorLine(e: unknown): string {
  if (e instanceof VellumError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
