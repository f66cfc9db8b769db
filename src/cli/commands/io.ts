/**
 * @module
 * What the commands for people share: JSON output, reading a file or standard input (an
 * unreadable file names itself), a witness policy file, and JSON Lines split into entries.
 */
import { readFileSync } from "node:fs";
import { type Policy, parsePolicy } from "../../core/policy.js";
import { EXIT_IO, ExitError, errorLine, usageError } from "../exit-codes.js";

/** Prints one JSON document (a line) on standard output. */
export const printJson = (doc: unknown) => process.stdout.write(`${JSON.stringify(doc)}\n`);

/** A file's bytes (`-` or none: standard input); an unreadable file names itself. */
export function readInput(file: string | undefined, what: string): Uint8Array {
  const from = file === undefined || file === "-" ? 0 : file;
  try {
    return new Uint8Array(readFileSync(from));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const name = from === 0 ? "standard input" : file;
    const message = `cannot read ${what} ${name} (${code ?? (e as Error).message})`;
    if (code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR") throw usageError(message);
    throw new ExitError(EXIT_IO, message, { cause: e });
  }
}

/** A witness policy file, parsed now: a bad one is a usage error, not a failed verification. */
export function readPolicy(file: string | undefined): Policy | undefined {
  if (file === undefined) return undefined;
  const text = readInput(file, "the policy file");
  try {
    return parsePolicy(text);
  } catch (e) {
    throw usageError(`--policy ${file}: not a C2SP tlog-policy (${errorLine(e)})`);
  }
}

/** Whether a line holds nothing but whitespace (space, tab, CR, VT, FF): not an entry. */
export function isBlank(bytes: Uint8Array): boolean {
  for (const b of bytes)
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0b && b !== 0x0c) return false;
  return true;
}

/**
 * Lines of `bytes` (LF or CRLF), byte-exact, with their 1-based line numbers; empty and
 * whitespace-only lines skipped (the same rule for `submit --lines` and `verify --lines --entry`).
 */
export function splitLines(bytes: Uint8Array): { line: number; payload: Uint8Array }[] {
  const out: { line: number; payload: Uint8Array }[] = [];
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 0x0d) stop--;
    const payload = bytes.subarray(start, stop);
    if (!isBlank(payload)) out.push({ line, payload });
    start = end + 1;
  }
  return out;
}

/** Names at most a few of many lines in an error message. */
export function someLines(lines: readonly number[]): string {
  const shown = lines.slice(0, 5).join(", ");
  return lines.length > 5 ? `${shown} and ${lines.length - 5} more` : shown;
}
