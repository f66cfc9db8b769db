/**
 * @module
 * Time windows are index ranges (spec/audit.md, "Time windows"). Entry timestamps never decrease
 * with the index — the sequencer enforces it, `vellum fsck` and the monitor check it — so the
 * entries with `from ≤ timestamp < to` are exactly the indices [start, end), where `start` is the
 * first entry at or after `from` and `end` the first at or after `to`. Four boundary entries
 * prove where the range lies: start−1 (before `from`), start (at or after `from`), end−1 (before
 * `to`) and end (at or after `to`), each where it exists. A page of the window carries every leaf
 * of its part of the range and the boundaries, with one multiproof (multiproof.ts) for all of
 * them against a checkpoint: checked here, the page is complete by construction — a missing,
 * extra, reordered or altered entry, a shifted boundary or another tree fails.
 *
 * Pure: the caller verifies the checkpoint's signatures first and passes its size and root.
 */
import { bytesEqual } from "./bytes.js";
import { decodeLeaf } from "./entry.js";
import { check, VellumError } from "./errors.js";
import { expandMultiproof } from "./multiproof.js";
import { hashLeaf } from "./rfc6962.js";

/** One page of a window's answer, decoded from JSON (base64 already turned into bytes). */
export interface WindowPage {
  readonly treeSize: number;
  /** The window, milliseconds since the epoch: from ≤ timestamp < to. */
  readonly from: number;
  readonly to: number;
  /** The window's index range [start, end) in the tree of `treeSize`. */
  readonly start: number;
  readonly end: number;
  /** This page's part of the range: [pageStart, pageEnd). */
  readonly pageStart: number;
  readonly pageEnd: number;
  /** Every leaf of the page and the boundaries, by index, increasing. */
  readonly leaves: readonly { readonly index: number; readonly leaf: Uint8Array }[];
  /** The multiproof of all those leaves in the tree of `treeSize`. */
  readonly multiproof: readonly Uint8Array[];
}

export interface WindowEntry {
  readonly index: number;
  readonly timestamp: number;
  readonly leaf: Uint8Array;
  readonly payload: Uint8Array;
}

const safe = (n: number) => Number.isSafeInteger(n) && n >= 0;

/** The indices a page must carry: its part of the range, and the range's boundaries. */
export function windowPageIndices(
  size: number,
  start: number,
  end: number,
  pageStart: number,
  pageEnd: number,
): number[] {
  const set = new Set<number>();
  for (let i = pageStart; i < pageEnd; i++) set.add(i);
  if (start > 0) set.add(start - 1);
  if (start < size) set.add(start);
  if (end > 0) set.add(end - 1);
  if (end < size) set.add(end);
  return [...set].sort((a, b) => a - b);
}

/**
 * Checks a window page against the tree of `size` with `root` (from a verified checkpoint) and
 * returns the page's entries, in index order. Throws PROOF_MISMATCH / PROOF_LENGTH when the leaves
 * and multiproof do not make the root, INCONSISTENT when a boundary or an entry's time does not
 * place the range where the page says, MALFORMED for a page that is not shaped right.
 */
export function verifyWindowPage(page: WindowPage, size: number, root: Uint8Array): WindowEntry[] {
  const { from, to, start, end, pageStart, pageEnd } = page;
  check(
    page.treeSize === size,
    "INCONSISTENT",
    `the page is for tree size ${page.treeSize}, not ${size}`,
  );
  check(
    [from, to, start, end, pageStart, pageEnd].every(safe) && from <= to,
    "MALFORMED",
    "window bounds must be integers, from ≤ to",
  );
  check(
    start <= end && end <= size && start <= pageStart && pageStart <= pageEnd && pageEnd <= end,
    "MALFORMED",
    `the page [${pageStart}, ${pageEnd}) is not inside the range [${start}, ${end}) of a tree of ${size}`,
  );
  const want = windowPageIndices(size, start, end, pageStart, pageEnd);
  const got = page.leaves.map((l) => l.index);
  check(
    got.length === want.length && got.every((i, k) => i === want[k]),
    "INCONSISTENT",
    `the page must carry leaves ${describe(want)}, it carries ${describe(got)}`,
  );
  if (want.length === 0) {
    // An empty window of an empty tree: nothing to prove but the size.
    check(size === 0, "INCONSISTENT", "a window of a non-empty tree has boundary entries");
    return [];
  }
  const expanded = expandMultiproof(
    got,
    page.leaves.map((l) => hashLeaf(l.leaf)),
    size,
    page.multiproof,
  );
  if (!bytesEqual(expanded.root, root)) {
    throw new VellumError(
      "PROOF_MISMATCH",
      "the page's leaves and multiproof do not make the checkpoint's root",
    );
  }
  const stamp = new Map(page.leaves.map((l) => [l.index, decodeLeaf(l.leaf)]));
  const time = (i: number) => stamp.get(i)!.timestamp;
  const place = (ok: boolean, what: string) =>
    check(
      ok,
      "INCONSISTENT",
      `the window [${from}, ${to}) does not start or end where the page says: ${what}`,
    );
  if (start > 0)
    place(
      time(start - 1) < from,
      `entry ${start - 1} is at ${time(start - 1)}, not before ${from}`,
    );
  if (start < size)
    place(time(start) >= from, `entry ${start} is at ${time(start)}, before ${from}`);
  if (end > 0 && end > start)
    place(time(end - 1) < to, `entry ${end - 1} is at ${time(end - 1)}, not before ${to}`);
  if (end < size) place(time(end) >= to, `entry ${end} is at ${time(end)}, before ${to}`);
  const out: WindowEntry[] = [];
  for (const { index, leaf } of page.leaves) {
    if (index < pageStart || index >= pageEnd) continue; // a boundary outside this page
    const { timestamp, payload } = stamp.get(index)!;
    // Implied by the boundaries and monotonic time; checked so a log that broke it is caught here.
    place(timestamp >= from && timestamp < to, `entry ${index} is at ${timestamp}, outside it`);
    out.push({ index, timestamp, leaf, payload });
  }
  return out;
}

function describe(indices: readonly number[]): string {
  if (indices.length <= 6) return `[${indices.join(", ")}]`;
  return `[${indices.slice(0, 3).join(", ")}, …, ${indices.slice(-2).join(", ")}] (${indices.length})`;
}
