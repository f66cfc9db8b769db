/**
 * A key's run in its list (src/core/list-run.ts): for log-index ranges anywhere in a list —
 * empty, at the edges, across pages — the proven run is exactly the list's entries in the range
 * (against a naive RFC 6962 reference); a missing, extra, reordered or altered item, a moved
 * boundary, another list size or a forged multiproof hash is refused.
 */
import { describe, expect, it } from "vitest";
import { type ListRunPage, listLeaf, verifyListRun } from "../../src/core/list-run.js";
import { multiproofRanges } from "../../src/core/multiproof.js";
import { windowPageIndices } from "../../src/core/window.js";
import { codeOf } from "../helpers/errors.js";
import { mth } from "../helpers/naive-merkle.js";

// A key's list: the log indices of its events, strictly increasing (gaps of 1 to 5).
const LIST: number[] = [];
for (let i = 0, at = 3; i < 90; i++, at += 1 + ((i * 7) % 5)) LIST.push(at);
const leaves = LIST.map(listLeaf);
const ROOT = mth(leaves);

/** The page a serving index would give for [from, to), from the list itself. */
function serve(from: number, to: number, pageStart?: number, limit = 1000): ListRunPage {
  const lower = (x: number) => {
    const i = LIST.findIndex((v) => v >= x);
    return i === -1 ? LIST.length : i;
  };
  const start = lower(from);
  const end = Math.max(start, lower(to));
  const ps = pageStart ?? start;
  const pe = Math.min(end, ps + limit);
  const positions = windowPageIndices(LIST.length, start, end, ps, pe);
  const multiproof = multiproofRanges(positions, LIST.length).map(([a, b]) =>
    mth(leaves.slice(a, b)),
  );
  return {
    listSize: LIST.length,
    from,
    to,
    start,
    end,
    pageStart: ps,
    pageEnd: pe,
    items: positions.map((position) => ({ position, logIndex: LIST[position]! })),
    multiproof,
  };
}

describe("a key's run", () => {
  it.each([
    [0, 3],
    [0, 1_000],
    [3, 4],
    [50, 120],
    [LIST.at(-1)!, LIST.at(-1)! + 1],
    [LIST.at(-1)! + 1, 10_000],
    [60, 60],
  ])("[%i, %i) is exactly the list's entries in it, proven", (from, to) => {
    expect(verifyListRun(serve(from, to), LIST.length, ROOT)).toEqual(
      LIST.filter((v) => v >= from && v < to),
    );
  });

  it("pages contiguously", () => {
    const all: number[] = [];
    const first = serve(20, 200, undefined, 7);
    for (let p = first.start; p < first.end; p += 7)
      all.push(...verifyListRun(serve(20, 200, p, 7), LIST.length, ROOT));
    expect(all).toEqual(LIST.filter((v) => v >= 20 && v < 200));
  });

  it("refuses a tampered page", () => {
    const good = serve(50, 120);
    const items = good.items;
    const cases: [string, ListRunPage, string][] = [
      ["a missing item", { ...good, items: items.filter((_, k) => k !== 3) }, "INCONSISTENT"],
      [
        "an extra item",
        { ...good, items: [...items, { position: 80, logIndex: LIST[80]! }] },
        "INCONSISTENT",
      ],
      [
        "reordered items",
        { ...good, items: [items[1]!, items[0]!, ...items.slice(2)] },
        "INCONSISTENT",
      ],
      [
        "an altered log index",
        {
          ...good,
          items: items.map((it, k) => (k === 4 ? { ...it, logIndex: it.logIndex + 1 } : it)),
        },
        "PROOF_MISMATCH",
      ],
      [
        "a run that starts later",
        { ...good, start: good.start + 1, pageStart: good.pageStart + 1 },
        "INCONSISTENT",
      ],
      ["another list size", { ...good, listSize: good.listSize + 1 }, "INCONSISTENT"],
      [
        "a forged multiproof hash",
        { ...good, multiproof: good.multiproof.map((m, k) => (k === 0 ? m.map((b) => b ^ 1) : m)) },
        "PROOF_MISMATCH",
      ],
      ["a wider range claimed", { ...good, to: good.to + 50 }, "INCONSISTENT"],
    ];
    for (const [what, page, code] of cases)
      expect(
        codeOf(() => verifyListRun(page, LIST.length, ROOT)),
        what,
      ).toBe(code);
  });
});
