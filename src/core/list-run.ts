/**
 * @module
 * One index key's list (spec/audit.md, "The index", to come): the strictly increasing log
 * indices of the events that have the key, as an RFC 6962 tree whose leaf i is list[i] as
 * 8 bytes big-endian. The events of the key in a log-index range [from, to) are a contiguous
 * run of positions [start, end) of the list — list[start−1] < from ≤ list[start] and
 * list[end−1] < to ≤ list[end] — so a run is proven like a time window (window.ts): the
 * positions of a page, the boundary positions, and one multiproof against the list's root, in
 * O(k + log n) hashes for k results; never the whole list.
 *
 * Pure; the caller gets the list's size and root from the index map (smt.ts), proven.
 */
import { bytesEqual, getUint64, putUint64 } from "./bytes.js";
import { check, VellumError } from "./errors.js";
import { expandMultiproof } from "./multiproof.js";
import { hashLeaf } from "./rfc6962.js";
import { windowPageIndices } from "./window.js";

/** A list leaf: the log index, 8 bytes big-endian. */
export function listLeaf(logIndex: number): Uint8Array {
  const out = new Uint8Array(8);
  putUint64(out, 0, logIndex);
  return out;
}

export interface ListRunPage {
  /** The list's size (its number of entries). */
  readonly listSize: number;
  /** The log-index range asked: from ≤ logIndex < to. */
  readonly from: number;
  readonly to: number;
  /** The run's positions [start, end), and this page's part [pageStart, pageEnd). */
  readonly start: number;
  readonly end: number;
  readonly pageStart: number;
  readonly pageEnd: number;
  /** Every position of the page and the boundaries, with the log index stored there. */
  readonly items: readonly { readonly position: number; readonly logIndex: number }[];
  readonly multiproof: readonly Uint8Array[];
}

/**
 * Checks a page of a key's run against the list of `size` with `root` and returns the log
 * indices of the page, in order. Throws PROOF_MISMATCH (the items and multiproof do not make the
 * root), INCONSISTENT (a boundary out of place, the list not increasing, another list size),
 * MALFORMED (a page not shaped right).
 */
export function verifyListRun(page: ListRunPage, size: number, root: Uint8Array): number[] {
  const { from, to, start, end, pageStart, pageEnd } = page;
  check(
    page.listSize === size,
    "INCONSISTENT",
    `the page is for a list of ${page.listSize}, not ${size}`,
  );
  check(
    [from, to, start, end, pageStart, pageEnd].every((n) => Number.isSafeInteger(n) && n >= 0) &&
      from <= to &&
      start <= pageStart &&
      pageStart <= pageEnd &&
      pageEnd <= end &&
      end <= size,
    "MALFORMED",
    "a run's bounds must be integers with start ≤ pageStart ≤ pageEnd ≤ end ≤ list size",
  );
  const want = windowPageIndices(size, start, end, pageStart, pageEnd);
  const got = page.items.map((i) => i.position);
  check(
    got.length === want.length && got.every((p, k) => p === want[k]),
    "INCONSISTENT",
    `the page must carry list positions [${want.join(", ")}]`,
  );
  if (want.length === 0) {
    check(size === 0, "INCONSISTENT", "a run of a non-empty list has boundary positions");
    return [];
  }
  for (const it of page.items) {
    check(
      Number.isSafeInteger(it.logIndex) && it.logIndex >= 0,
      "MALFORMED",
      "log indices are integers ≥ 0",
    );
  }
  const expanded = expandMultiproof(
    got,
    page.items.map((i) => hashLeaf(listLeaf(i.logIndex))),
    size,
    page.multiproof,
  );
  if (!bytesEqual(expanded.root, root)) {
    throw new VellumError(
      "PROOF_MISMATCH",
      "the run's items and multiproof do not make the list's root",
    );
  }
  const at = new Map(page.items.map((i) => [i.position, i.logIndex]));
  // The list is strictly increasing where the page can see it (the index log's monitor checks
  // it everywhere).
  for (let k = 1; k < page.items.length; k++) {
    const a = page.items[k - 1]!;
    const b = page.items[k]!;
    check(
      a.logIndex < b.logIndex,
      "INCONSISTENT",
      `the list is not increasing at position ${b.position}`,
    );
  }
  const place = (ok: boolean, what: string) =>
    check(ok, "INCONSISTENT", `the run [${from}, ${to}) is not where the page says: ${what}`);
  if (start > 0)
    place(at.get(start - 1)! < from, `position ${start - 1} holds ${at.get(start - 1)}`);
  if (start < size) place(at.get(start)! >= from, `position ${start} holds ${at.get(start)}`);
  if (end > 0 && end > start)
    place(at.get(end - 1)! < to, `position ${end - 1} holds ${at.get(end - 1)}`);
  if (end < size) place(at.get(end)! >= to, `position ${end} holds ${at.get(end)}`);
  const out: number[] = [];
  for (let p = pageStart; p < pageEnd; p++) out.push(at.get(p)!);
  return out;
}

/** The log index stored in a list leaf (for readers of raw list tiles). */
export function logIndexOfListLeaf(leaf: Uint8Array): number {
  check(leaf.length === 8, "MALFORMED", "a list leaf is 8 bytes");
  return getUint64(leaf, 0, "list leaf");
}
