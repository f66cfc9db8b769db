/**
 * @module
 * The one retry schedule: exponential backoff that doubles from a first pause up to a cap, and
 * the server's Retry-After (seconds, RFC 9110 §10.2.3) when it asks for a wait. Used by the
 * clients (HTTP API, tiles), the log's recovery and rollback check, and the witness's reopen.
 * Pure: the callers sleep.
 */

/** The pause after `pause`: doubled, at most `maxMs`. */
export function nextBackoff(pause: number, maxMs: number): number {
  return Math.min(pause * 2, maxMs);
}

/** The pause before retry `attempt` (0 for the first retry): firstMs·2^attempt, at most maxMs. */
export function backoffDelay(attempt: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** attempt);
}

/**
 * A Retry-After header's wait in milliseconds, at most `maxMs`, when it is a positive number of
 * seconds; undefined otherwise (an HTTP date is not honoured: callers fall back to backoff).
 */
export function retryAfterMs(header: string | null | undefined, maxMs: number): number | undefined {
  const seconds = Number(header);
  return header !== null && header !== undefined && Number.isFinite(seconds) && seconds > 0
    ? Math.min(maxMs, seconds * 1000)
    : undefined;
}
