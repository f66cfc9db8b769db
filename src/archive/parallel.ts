/**
 * @module
 * Bounded concurrency for the archive's object-store calls: each is a network round trip, so one
 * at a time leaves both the store and the archive idle most of the time.
 */

/** Runs `work` over `items`, at most `limit` at once; rejects with the first failure, once all lanes stopped. */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      try {
        await work(items[next++] as T);
      } catch (e) {
        failed = true; // the other lanes take nothing more
        throw e;
      }
    }
  });
  // Every lane has stopped before this returns (none goes on behind a failure).
  const settled = await Promise.allSettled(lanes);
  const rejected = settled.find((r) => r.status === "rejected");
  if (rejected !== undefined) throw (rejected as PromiseRejectedResult).reason;
}
