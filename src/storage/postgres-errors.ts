/**
 * @module
 * What a failed PostgreSQL call becomes: STORAGE_FAILURE (fail-stop, spec/storage.md) saying
 * what was being done, the driver's message, and its code — an SQLSTATE from the server
 * (five characters, e.g. 40001), or a system error from the connection (ECONNRESET, ETIMEDOUT).
 */
import { VellumError } from "../core/errors.js";

export function postgresFailure(e: unknown, doing: string, where = "PostgreSQL"): VellumError {
  if (e instanceof VellumError) return e;
  const err = e as { message?: string; code?: string };
  const code =
    err.code === undefined
      ? ""
      : /^[0-9A-Z]{5}$/.test(err.code)
        ? ` (SQLSTATE ${err.code})`
        : ` (${err.code})`;
  return new VellumError(
    "STORAGE_FAILURE",
    `${where}, ${doing}: ${err.message ?? String(e)}${code}`,
    {
      cause: e,
    },
  );
}
