/**
 * Waiting in end-to-end tests for something a real process does in its own time, bounded: polls
 * `f` until it gives a value (a throw counts as not yet), or fails after `ms` naming what it
 * waited for.
 */
export async function until<T>(
  what: string,
  f: () => Promise<T | undefined>,
  ms = 30_000,
  pollMs = 25,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
