/**
 * The stored tree's inclusion proofs (a direct walk up the leaf's path, src/log/tree.ts) must be
 * the very hashes the core's proof plan names (checked against the RFC's recursion elsewhere),
 * for every index of sizes around tile and stratum boundaries, from memory and after a restart
 * (when the nodes come from storage). Its multiproofs send exactly the ranges' hashes.
 */
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import { CompactRange, foldRight } from "../../src/core/compact.js";
import { rangeNodes } from "../../src/core/merkle.js";
import { multiproofRanges } from "../../src/core/multiproof.js";
import { inclusionProofPlan } from "../../src/core/proof.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { codeOfAsync } from "../helpers/errors.js";
import { openMemoryLog } from "./helpers.js";

const TOTAL = 1100;
const SIZES = [
  ...Array.from({ length: 40 }, (_, i) => i + 1),
  127,
  255,
  256,
  257,
  300,
  511,
  512,
  513,
  768,
  1023,
  1024,
  1025,
  TOTAL,
];

describe("Tree.inclusionProof", () => {
  it("equals the plan's hashes for every index of sizes around tile boundaries", async () => {
    let { log, db } = await openMemoryLog(undefined, { batchMaxEntries: 97 });
    const payloads = Array.from({ length: TOTAL }, (_, i) => new TextEncoder().encode(`t ${i}`));
    await log.submitMany(payloads);
    const nodes = new Map<string, Uint8Array>();
    const range = CompactRange.empty();
    for (const e of await log.entries(0, TOTAL)) {
      range.append(hashLeaf(e.leaf), (l, i, h) => nodes.set(`${l}/${i}`, h));
    }
    const expected = (index: number, size: number) =>
      inclusionProofPlan(index, size).elements.map(
        (element) => foldRight(element.map(({ level, index: i }) => nodes.get(`${level}/${i}`)!))!,
      );

    for (const restarted of [false, true]) {
      let compared = 0;
      for (const size of SIZES) {
        for (let index = 0; index < size; index++) {
          const got = await log.inclusionProof(index, size);
          const want = expected(index, size);
          expect(got.length, `index ${index} of ${size}`).toBe(want.length);
          got.forEach((h, i) => {
            expect(bytesEqual(h, want[i]!), `hash ${i} of index ${index} in ${size}`).toBe(true);
          });
          compared++;
        }
      }
      expect(compared).toBe(SIZES.reduce((a, b) => a + b, 0));
      if (!restarted) {
        await log.close();
        ({ log, db } = await openMemoryLog(db.simulateRestart()));
      }
    }

    // Multiproofs from the stored tree: each sent hash is the range's hash, for contiguous runs
    // across tile boundaries, scattered leaves and a whole tree (after the restart: from storage).
    const rangeHash = (start: number, end: number) =>
      foldRight(rangeNodes(start, end).map(({ level, index: i }) => nodes.get(`${level}/${i}`)!))!;
    for (const [size, indices] of [
      [TOTAL, Array.from({ length: 100 }, (_, i) => 200 + i)],
      [TOTAL, [0, 255, 256, 511, 512, 1099]],
      [1025, Array.from({ length: 1025 }, (_, i) => i)],
      [300, [299]],
      [257, [3, 128, 256]],
    ] as const) {
      const got = await log.multiproof(indices, size);
      const want = multiproofRanges(indices, size).map(([start, end]) => rangeHash(start, end));
      expect(got.length, `multiproof of ${indices.length} in ${size}`).toBe(want.length);
      got.forEach((h, i) => {
        expect(bytesEqual(h, want[i]!), `multiproof hash ${i} in ${size}`).toBe(true);
      });
    }

    expect(await codeOfAsync(log.inclusionProof(TOTAL, TOTAL))).toBe("OUT_OF_RANGE");
    expect(await codeOfAsync(log.inclusionProof(0, TOTAL + 1))).toBe("OUT_OF_RANGE");
    expect(await codeOfAsync(log.inclusionProof(-1, TOTAL))).toBe("OUT_OF_RANGE");
    await log.close();
  });
});
