/**
 * Round trips at the sizes where tiles fill and levels appear: 0, 1, 255, 256, 257, 65535, 65536,
 * 65537 leaves. At each size: the checkpoint root equals an independent computation, every
 * served tile and bundle is byte-exact, proofs verify, and a restart resumes at exactly that size.
 */
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import { CompactRange } from "../../src/core/compact.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import {
  buildHashTile,
  encodeEntryBundle,
  formatTilePath,
  tilesForSize,
} from "../../src/core/tiles.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import { openMemoryLog } from "./helpers.js";

const SIZES = [0, 1, 255, 256, 257, 65535, 65536, 65537];

describe("tile edges", () => {
  it("round-trips at every tile edge, across restarts", { timeout: 120_000 }, async () => {
    let { log, db } = await openMemoryLog(undefined, { batchMaxEntries: 4096 });
    const leaves: Uint8Array[] = [];
    const nodes = new Map<string, Uint8Array>();
    const range = CompactRange.empty();
    const roots: Uint8Array[] = [range.root()];
    let n = 0;
    for (const size of SIZES) {
      const pending = [];
      for (; n < size; n++) pending.push(log.submit(new TextEncoder().encode(`edge ${n}`)));
      await Promise.all(pending);
      for (const e of await log.entries(leaves.length, size - leaves.length)) {
        leaves.push(e.leaf);
        range.append(hashLeaf(e.leaf), (l, i, h) => nodes.set(`${l}/${i}`, h));
        roots.push(range.root());
      }
      expect(log.size).toBe(size);
      expect(bytesEqual(log.checkpoint.checkpoint.rootHash, roots[size]!)).toBe(true);

      for (const tile of tilesForSize(size)) {
        const got =
          tile.level === "entries"
            ? await log.entryBundle(tile.index, tile.width)
            : await log.hashTile(tile.level, tile.index, tile.width);
        const want =
          tile.level === "entries"
            ? encodeEntryBundle(leaves.slice(tile.index * 256, tile.index * 256 + tile.width))
            : buildHashTile(tile, (h, i) => nodes.get(`${h}/${i}`)!);
        expect(bytesEqual(got, want), `${formatTilePath(tile)} at size ${size}`).toBe(true);
      }
      for (const index of [0, size >> 1, size - 2, size - 1].filter((i) => i >= 0 && i < size)) {
        const proof = await log.inclusionProof(index, size);
        verifyInclusion(index, size, hashLeaf(leaves[index]!), proof, roots[size]!);
      }
      for (const old of [1, 255, 256, 65535].filter((m) => m <= size)) {
        verifyConsistency(
          old,
          size,
          await log.consistencyProof(old, size),
          roots[old]!,
          roots[size]!,
        );
      }

      // Restart at exactly this size and carry on from there.
      await log.close();
      ({ log, db } = await openMemoryLog(db.simulateRestart(), { batchMaxEntries: 4096 }));
      expect(log.size).toBe(size);
      expect(bytesEqual(log.checkpoint.checkpoint.rootHash, roots[size]!)).toBe(true);
    }
    await log.close();
  });
});
