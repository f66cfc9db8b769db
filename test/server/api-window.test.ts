/**
 * Time windows with their completeness proof (GET /v1/events?from=&to=, src/core/window.ts), in
 * process: entries one second apart; every window — empty, at the edges, spanning pages — is
 * answered with exactly the entries whose timestamps fall in it, and verifies against the signed
 * checkpoint; a missing, extra, reordered or altered entry, a shifted boundary, another tree's
 * checkpoint or a forged multiproof hash is each refused.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { base64Decode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { verifyWindowPage, type WindowEntry, type WindowPage } from "../../src/core/window.js";
import { codeOf } from "../helpers/errors.js";
import { expectJson, expectProblem, get, type Harness, openHarness } from "./helpers.js";

const T0 = 1_764_748_800_000;
const N = 40;
let h: Harness;
let logKey: string;

interface WindowJson {
  treeSize: number;
  checkpoint: string;
  from: number;
  to: number;
  proof: {
    kind: string;
    start: number;
    end: number;
    pageStart: number;
    pageEnd: number;
    leaves: { index: number; leaf: string }[];
    multiproof: string[];
  };
  next: string | null;
}

beforeAll(async () => {
  let now = T0;
  h = await openHarness({ log: { clock: () => now } });
  // Entry i is logged at T0 + 1000·i (two entries share each of the last seconds, to test ties).
  for (let i = 0; i < N; i++) {
    if (i < N - 4 || i % 2 === 0) now = T0 + 1000 * i;
    await h.log.submit(new TextEncoder().encode(`event ${i}`));
  }
  logKey = (await expectJson<{ verifierKey: string }>(await get(h.app, "/v1/log"), 200))
    .verifierKey;
});

const page = async (query: string) =>
  expectJson<WindowJson>(await get(h.app, `/v1/events?${query}`, { token: h.tokens.read }), 200);

const decode = (a: WindowJson): WindowPage => ({
  treeSize: a.treeSize,
  from: a.from,
  to: a.to,
  start: a.proof.start,
  end: a.proof.end,
  pageStart: a.proof.pageStart,
  pageEnd: a.proof.pageEnd,
  leaves: a.proof.leaves.map((l) => ({ index: l.index, leaf: base64Decode(l.leaf) })),
  multiproof: a.proof.multiproof.map((m) => base64Decode(m)),
});

/** Verifies a page the way a client does: the checkpoint's signature, then the page. */
function verify(a: WindowJson, page = decode(a)): WindowEntry[] {
  const cp = openCheckpoint(a.checkpoint, verifierFromKey(logKey)).checkpoint;
  return verifyWindowPage(page, cp.size, cp.rootHash);
}

/** Every entry of the window, following the cursor. */
async function all(from: number, to: number, limit = 1000): Promise<number[]> {
  const out: number[] = [];
  let cursor: string | null = null;
  do {
    const a: WindowJson = await page(
      `from=${from}&to=${to}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`,
    );
    out.push(...verify(a).map((e) => e.index));
    cursor = a.next;
  } while (cursor !== null);
  return out;
}

/** What the window holds, from first principles. */
const expected = (from: number, to: number) =>
  Array.from({ length: N }, (_, i) => i).filter((i) => {
    const t = T0 + 1000 * (i < N - 4 || i % 2 === 0 ? i : i - 1);
    return t >= from && t < to;
  });

describe("GET /v1/events?from=&to= (time windows)", () => {
  it.each([
    [T0 + 5_000, T0 + 12_000],
    [T0, T0 + 1],
    [T0 - 10_000, T0],
    [T0 - 10_000, T0 + 1_000_000],
    [T0 + 36_000, T0 + 39_000],
    [T0 + 37_000, T0 + 38_500],
    [T0 + 39_000, T0 + 99_000],
    [T0 + 7_500, T0 + 7_500],
    [T0 + 50_000, T0 + 60_000],
  ])("[%i, %i) holds exactly its entries, proven", async (from, to) => {
    expect(await all(from, to)).toEqual(expected(from, to));
  });

  it("pages a window with a cursor pinned to one tree size, contiguously", async () => {
    expect(await all(T0, T0 + 30_000, 7)).toEqual(expected(T0, T0 + 30_000));
    const first = await page(`from=${T0}&to=${T0 + 30_000}&limit=7`);
    expect(first.next).toBe(`${first.treeSize}.7`);
  });

  it("refuses a page that was tampered with, whatever was changed", async () => {
    const a = await page(`from=${T0 + 5_000}&to=${T0 + 12_000}`);
    const good = decode(a);
    expect(verify(a, good).map((e) => e.index)).toEqual(expected(T0 + 5_000, T0 + 12_000));
    const leaves = good.leaves;
    const altered = leaves.map((l, k) =>
      k === 3 ? { ...l, leaf: l.leaf.map((b, j) => (j === l.leaf.length - 1 ? b ^ 1 : b)) } : l,
    );
    const cases: [string, WindowPage, string][] = [
      ["a missing entry", { ...good, leaves: leaves.filter((_, k) => k !== 4) }, "INCONSISTENT"],
      [
        "an extra entry",
        { ...good, leaves: [...leaves, { index: 30, leaf: leaves[0]!.leaf }] },
        "INCONSISTENT",
      ],
      [
        "reordered entries",
        { ...good, leaves: [leaves[1]!, leaves[0]!, ...leaves.slice(2)] },
        "INCONSISTENT",
      ],
      ["an altered entry", { ...good, leaves: altered }, "PROOF_MISMATCH"],
      [
        "swapped leaf bytes between two indices",
        {
          ...good,
          leaves: leaves.map((l, k) =>
            k === 2
              ? { ...l, leaf: leaves[3]!.leaf }
              : k === 3
                ? { ...l, leaf: leaves[2]!.leaf }
                : l,
          ),
        },
        "PROOF_MISMATCH",
      ],
      [
        "a range that starts later",
        { ...good, start: good.start + 1, pageStart: good.pageStart + 1 },
        "INCONSISTENT",
      ],
      [
        "a range that ends earlier",
        { ...good, end: good.end - 1, pageEnd: good.pageEnd - 1 },
        "INCONSISTENT",
      ],
      ["another tree size", { ...good, treeSize: good.treeSize - 1 }, "INCONSISTENT"],
      [
        "a forged multiproof hash",
        {
          ...good,
          multiproof: good.multiproof.map((m, k) => (k === 0 ? m.map((b) => b ^ 0xff) : m)),
        },
        "PROOF_MISMATCH",
      ],
      ["a wider window claimed", { ...good, to: good.to + 5_000 }, "INCONSISTENT"],
    ];
    for (const [what, forged, code] of cases) {
      expect(
        codeOf(() => verify(a, forged)),
        what,
      ).toBe(code);
    }
  });

  it("needs from and to, and the read scope", async () => {
    await expectProblem(
      await get(h.app, "/v1/events?from=1", { token: h.tokens.read }),
      400,
      "BAD_REQUEST",
    );
    await expectProblem(
      await get(h.app, "/v1/events?from=5&to=1", { token: h.tokens.read }),
      400,
      "BAD_REQUEST",
    );
    await expectProblem(
      await get(h.app, `/v1/events?from=1&to=2&cursor=x`, { token: h.tokens.read }),
      400,
      "BAD_REQUEST",
    );
    await expectProblem(await get(h.app, "/v1/events?from=1&to=2"), 401, "UNAUTHENTICATED");
  });
});
