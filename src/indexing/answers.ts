/**
 * @module
 * Answers from the verifiable index (spec/audit.md, "Index answers"): the events with one key in
 * a time window, a page at a time, with everything src/core/index-answer.ts needs to prove the
 * page complete. A first page proves the revision (index-log leaf, its inclusion, the map proof,
 * consistency with the main checkpoint); later pages are pinned by their cursor to the first
 * page's revision, key and list size, and carry only the window, the run and the entries.
 *
 * Built under the indexer's lock: the store is at exactly the published revision.
 */
import { base64Encode } from "../core/bytes.js";
import { check, VellumError } from "../core/errors.js";
import { type IndexKey, KEY_KINDS, type KeyKind } from "../core/event-keys.js";
import { windowPageIndices } from "../core/window.js";
import type { Log } from "../log/log.js";
import type { Indexer } from "./engine.js";

export interface IndexQuery {
  /** The keys named (at least one); the answer proves the one with the shortest list. */
  readonly keys: readonly IndexKey[];
  /** The key to prove (one of `keys`); default: the one with the shortest list. */
  readonly prove?: IndexKey;
  /** Milliseconds since the epoch: from ≤ timestamp < to (defaults: everything). */
  readonly from?: number;
  readonly to?: number;
  readonly limit: number;
  readonly order: "asc" | "desc";
  readonly cursor?: string;
}

/** Pinned later pages: the key's kind, the revision's tree size, the list size, the position. */
interface Cursor {
  readonly kind: KeyKind;
  readonly treeSize: number;
  readonly count: number;
  readonly at: number;
}

function parseCursor(text: string): Cursor {
  const m = /^([a-z]+)\.(0|[1-9]\d{0,15})\.(0|[1-9]\d{0,15})\.(0|[1-9]\d{0,15})$/.exec(text);
  const kind = m?.[1] as KeyKind | undefined;
  if (m === null || kind === undefined || !KEY_KINDS.includes(kind)) {
    throw new VellumError("MALFORMED", "cursor must be a cursor from a previous page");
  }
  return { kind, treeSize: Number(m[2]), count: Number(m[3]), at: Number(m[4]) };
}

const b64 = (hashes: readonly Uint8Array[]) => hashes.map(base64Encode);

/** The first index below `size` whose entry's timestamp is at least `time` (or `size`). */
export async function firstAtOrAfter(log: Log, size: number, time: number): Promise<number> {
  let lo = 0;
  let hi = size;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if ((await log.entry(mid)).timestamp < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function leavesOf(log: Log, indices: readonly number[]) {
  return Promise.all(
    indices.map(async (i) => ({ index: i, leaf: base64Encode((await log.entry(i)).leaf) })),
  );
}

export async function indexPage(indexer: Indexer, query: IndexQuery) {
  check(query.keys.length > 0, "MALFORMED", "an index query names at least one key");
  return indexer.lock.run(async () => {
    const published = indexer.published;
    if (published === undefined || !indexer.settled) {
      throw new VellumError(
        "UNAVAILABLE",
        published === undefined
          ? "the index has no revision yet"
          : `the index is waiting for its log to take a revision${indexer.failure === undefined ? "" : `: ${indexer.failure.message}`}`,
        { retryAfterMs: 1000 },
      );
    }
    const source = indexer.source;
    const store = indexer.store;
    const cursor = query.cursor === undefined ? undefined : parseCursor(query.cursor);
    // The key proven: the cursor's, or the one with the shortest list.
    let key: IndexKey;
    let held: number;
    if (cursor !== undefined) {
      if (query.prove !== undefined && cursor.kind !== query.prove.kind) {
        throw new VellumError("MALFORMED", `the cursor must be for the ${query.prove.kind} proven`);
      }
      const named = query.keys.find((k) => k.kind === cursor.kind);
      if (named === undefined) {
        throw new VellumError(
          "MALFORMED",
          `the cursor is for a ${cursor.kind} the query does not name`,
        );
      }
      key = named;
      [held] = (await store.counts([key])) as [number];
    } else if (query.prove !== undefined) {
      key = query.prove;
      [held] = (await store.counts([key])) as [number];
    } else {
      const counts = await store.counts(query.keys);
      let best = 0;
      for (const [i, n] of counts.entries()) if (n < counts[best]!) best = i;
      key = query.keys[best]!;
      held = counts[best]!;
    }
    const treeSize = cursor?.treeSize ?? published.revision.logSize;
    const count = cursor?.count ?? held;
    check(
      treeSize <= published.revision.logSize && count <= held,
      "MALFORMED",
      "the cursor is beyond what the index holds",
    );

    // The window's index range in the revision's tree, and its boundary entries.
    const from = query.from ?? 0;
    const to = query.to ?? Number.MAX_SAFE_INTEGER;
    check(from <= to, "MALFORMED", "from must not be after to");
    // No bound asked: the whole tree, without searching for it.
    const start = from === 0 ? 0 : await firstAtOrAfter(source, treeSize, from);
    const end =
      to === Number.MAX_SAFE_INTEGER
        ? treeSize
        : Math.max(start, await firstAtOrAfter(source, treeSize, to));
    // The whole tree needs no boundary entries (and a tenant-limited reader must not get them).
    const whole = from === 0 && to === Number.MAX_SAFE_INTEGER;
    const bounds = whole ? [] : windowPageIndices(treeSize, start, end, start, start);
    const windowProof = bounds.length === 0 ? [] : await source.multiproof(bounds, treeSize);

    // The key's run in [start, end), and this page of it.
    const run = await store.run({
      key,
      count,
      from: start,
      to: end,
      order: query.order,
      limit: query.limit,
      ...(cursor === undefined ? {} : { at: cursor.at }),
    });
    const { pageStart, pageEnd } = run;
    const runStart = run.start;
    const runEnd = run.end;
    const listRoot = run.listRoot;
    const results = run.items
      .filter((i) => i.position >= pageStart && i.position < pageEnd)
      .map((i) => i.logIndex);
    const entriesProof = results.length === 0 ? [] : await source.multiproof(results, treeSize);

    const more = query.order === "asc" ? pageEnd < runEnd : pageStart > runStart;
    const next = more
      ? `${key.kind}.${treeSize}.${count}.${query.order === "asc" ? pageEnd : pageStart}`
      : null;

    let revision = null;
    let checkpoint = null;
    if (cursor === undefined) {
      const main = source.published;
      if (main === undefined)
        throw new VellumError("UNAVAILABLE", "no checkpoint is published yet");
      checkpoint = main.note;
      const mainSize = main.checkpoint.size;
      const indexLog = indexer.indexLog;
      const indexCheckpoint =
        (indexLog.published?.checkpoint.size ?? 0) > published.leafIndex
          ? indexLog.published!
          : indexLog.checkpoint;
      const indexSize = indexCheckpoint.checkpoint.size;
      revision = {
        checkpoint: indexCheckpoint.note,
        leafIndex: published.leafIndex,
        leaf: base64Encode(published.leaf),
        inclusion: b64(await indexLog.inclusionProof(published.leafIndex, indexSize)),
        map: await (async () => {
          const proof = await store.prove(key);
          return {
            siblings: b64(proof.siblings),
            terminal:
              proof.terminal === null
                ? null
                : {
                    key: base64Encode(proof.terminal.key),
                    value: base64Encode(proof.terminal.value),
                  },
          };
        })(),
        consistency:
          treeSize === 0 || treeSize === mainSize
            ? []
            : b64(await source.consistencyProof(treeSize, mainSize)),
      };
    }
    return {
      mode: "index" as const,
      treeSize,
      checkpoint,
      from,
      to,
      key,
      count,
      listRoot: base64Encode(listRoot),
      revision,
      window: {
        start,
        end,
        leaves: await leavesOf(source, bounds),
        multiproof: b64(windowProof),
      },
      run: {
        listSize: count,
        from: start,
        to: end,
        start: runStart,
        end: runEnd,
        pageStart,
        pageEnd,
        items: run.items,
        multiproof: b64(run.multiproof),
      },
      leaves: await leavesOf(source, results),
      multiproof: b64(entriesProof),
      next,
    };
  });
}
