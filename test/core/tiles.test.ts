import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { base64Decode, base64Encode, hexEncode } from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";
import { type ErrorCode, isVellumError } from "../../src/core/errors.js";
import { hashChildren, hashLeaf } from "../../src/core/rfc6962.js";
import {
  appendEntryBundles,
  appendHashTiles,
  buildHashTile,
  decodeEntryBundle,
  decodeHashTile,
  type EntryBundleId,
  encodeEntryBundle,
  encodeHashTile,
  entryBundleViews,
  FULL_TILE_BYTES,
  formatTilePath,
  type HashTileId,
  isEntryBundle,
  MAX_ENTRY_SIZE,
  MAX_TILE_LEVEL,
  parseTilePath,
  partialTileWidth,
  perfectSubtreeRoot,
  TILE_HEIGHT,
  TILE_WIDTH,
  type TileId,
  tileForNode,
  tilesBetween,
  tilesForSize,
} from "../../src/core/tiles.js";
import { codeOf } from "../helpers/errors.js";
import { reference300 } from "../vectors.js";

const vectors = reference300();
const leaves = vectors.leaves.map((l) => base64Decode(l));
const leafHashes = leaves.map(hashLeaf);

/** Independent reference: RFC 6962 MTH of a list of leaf hashes, split at the largest 2^k < n. */
function mth(hashes: Uint8Array[]): Uint8Array {
  if (hashes.length === 1) return hashes[0]!;
  let k = 1;
  while (k * 2 < hashes.length) k *= 2;
  return hashChildren(mth(hashes.slice(0, k)), mth(hashes.slice(k)));
}

/** Node (height, index) of the 300-leaf vector tree, straight from the definition. */
const referenceNode = (height: number, index: number): Uint8Array =>
  mth(leafHashes.slice(index * 2 ** height, (index + 1) * 2 ** height));

const paths = (tiles: Iterable<TileId>): string[] => Array.from(tiles, formatTilePath);
const sha256Hex = (b: Uint8Array) => hexEncode(sha256(b));

/** Every resource of a tree of `size` leaves, built from scratch with the incremental helpers. */
function buildAll(size: number): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const noPartial = () => {
    throw new Error("readPartial must not be called when growing from size 0");
  };
  for (const { tile, data } of appendHashTiles(0, noPartial, leafHashes.slice(0, size))) {
    out.set(formatTilePath(tile), data);
  }
  for (const { tile, data } of appendEntryBundles(0, noPartial, leaves.slice(0, size))) {
    out.set(formatTilePath(tile), data);
  }
  return out;
}

describe("constants", () => {
  it("match the spec", () => {
    expect([TILE_WIDTH, TILE_HEIGHT, MAX_TILE_LEVEL, MAX_ENTRY_SIZE, FULL_TILE_BYTES]).toEqual([
      256, 8, 63, 65535, 8192,
    ]);
  });
});

describe("tile paths", () => {
  const asTile = (v: (typeof vectors.tilePaths)[number]): TileId =>
    v.level === -1
      ? { level: "entries", index: v.index, width: v.width }
      : { level: v.level, index: v.index, width: v.width };

  it.each(vectors.tilePaths)("$path formats and parses", (v) => {
    expect(formatTilePath(asTile(v))).toBe(v.path);
    expect(parseTilePath(v.path)).toEqual(asTile(v));
  });

  it.each([
    [0, "000"],
    [7, "007"],
    [999, "999"],
    [1000, "x001/000"],
    [1234, "x001/234"],
    [1234067, "x001/x234/067"],
    [1099511627776, "x001/x099/x511/x627/776"],
    // Past 2^32 and up to 2^53-1: 32-bit arithmetic would wrap these.
    [8999999999999999, "x008/x999/x999/x999/x999/999"],
    [2 ** 53 - 1, "x009/x007/x199/x254/x740/991"],
  ])("index %d is written %s", (index, n) => {
    expect(formatTilePath({ level: 3, index, width: 256 })).toBe(`tile/3/${n}`);
    expect(formatTilePath({ level: "entries", index, width: 17 })).toBe(`tile/entries/${n}.p/17`);
    expect(parseTilePath(`tile/3/${n}`)).toEqual({ level: 3, index, width: 256 });
  });

  it("level 63 and width 255 are the largest", () => {
    expect(parseTilePath("tile/63/000.p/255")).toEqual({ level: 63, index: 0, width: 255 });
  });

  it.each<[string, ErrorCode]>([
    ["", "MALFORMED"],
    ["tile/0", "MALFORMED"],
    ["tile/0/", "MALFORMED"],
    ["/tile/0/000", "MALFORMED"],
    ["xtile/0/000", "MALFORMED"],
    ["tile/0/000/", "MALFORMED"],
    ["tile/0/000\n", "MALFORMED"],
    [" tile/0/000", "MALFORMED"],
    ["tile/0/000?x=1", "MALFORMED"],
    ["tile//000", "MALFORMED"],
    ["tile/00/000", "MALFORMED"],
    ["tile/01/000", "MALFORMED"],
    ["tile/64/000", "MALFORMED"],
    ["tile/100/000", "MALFORMED"],
    ["tile/-1/000", "MALFORMED"],
    ["tile/data/000", "MALFORMED"],
    ["tile/8/0/000", "MALFORMED"],
    ["tile/ENTRIES/000", "MALFORMED"],
    ["tile/0/0", "MALFORMED"],
    ["tile/0/0000", "MALFORMED"],
    ["tile/0/1234", "MALFORMED"],
    ["tile/0/x000/001", "MALFORMED"],
    ["tile/0/x000/x001/234", "MALFORMED"],
    ["tile/0/001/234", "MALFORMED"],
    ["tile/0/x001/x234", "MALFORMED"],
    ["tile/0/X001/234", "MALFORMED"],
    ["tile/0/x001//234", "MALFORMED"],
    ["tile/0/../0/000", "MALFORMED"],
    ["tile/0/x001/../234", "MALFORMED"],
    ["tile/0/%30%30%30", "MALFORMED"],
    ["tile/0/000.p/0", "MALFORMED"],
    ["tile/0/000.p/256", "MALFORMED"],
    ["tile/0/000.p/300", "MALFORMED"],
    ["tile/0/000.p/01", "MALFORMED"],
    ["tile/0/000.p/+1", "MALFORMED"],
    ["tile/0/000.p/", "MALFORMED"],
    ["tile/0/000.p", "MALFORMED"],
    ["tile/0/000.p/1/", "MALFORMED"],
    ["tile/0/000.P/1", "MALFORMED"],
    ["tile/entries/000.p/1.p/1", "MALFORMED"],
    [`tile/0/${"x001/".repeat(20)}000`, "MALFORMED"],
    ["tile/0/x009/x007/x199/x254/x740/992", "OUT_OF_RANGE"],
    ["tile/0/x999/x999/x999/x999/x999/999", "OUT_OF_RANGE"],
  ])("rejects %j with %s", (path, code) => {
    expect(codeOf(() => parseTilePath(path))).toBe(code);
  });

  it.each<TileId>([
    { level: 64, index: 0, width: 256 },
    { level: -1, index: 0, width: 256 },
    { level: 1.5, index: 0, width: 256 },
    { level: 0, index: -1, width: 256 },
    { level: 0, index: 0.5, width: 256 },
    { level: 0, index: 2 ** 53, width: 256 },
    { level: "entries", index: Number.NaN, width: 256 },
    { level: 0, index: 0, width: 0 },
    { level: 0, index: 0, width: 257 },
    { level: "entries", index: 0, width: 2.5 },
  ])("formatTilePath rejects %j", (tile) => {
    expect(codeOf(() => formatTilePath(tile))).toBe("OUT_OF_RANGE");
  });

  it("round trips any tile (property)", () => {
    const tile = fc.record({
      level: fc.oneof(fc.integer({ min: 0, max: MAX_TILE_LEVEL }), fc.constant("entries" as const)),
      index: fc.oneof(fc.maxSafeNat(), fc.nat({ max: 2_000_000 })),
      width: fc.integer({ min: 1, max: TILE_WIDTH }),
    });
    fc.assert(
      fc.property(tile, (t) => {
        const path = formatTilePath(t as TileId);
        expect(parseTilePath(path)).toEqual(t);
      }),
      { numRuns: 2000 },
    );
  });

  it("isEntryBundle tells the two kinds apart", () => {
    expect(isEntryBundle(parseTilePath("tile/entries/000"))).toBe(true);
    expect(isEntryBundle(parseTilePath("tile/0/000"))).toBe(false);
  });
});

describe("which tiles a tree serves", () => {
  it.each(vectors.tiles)("size $treeSize serves exactly the vector's resources, in order", (t) => {
    expect(paths(tilesForSize(t.treeSize))).toEqual(t.resources.map((r) => r.path));
  });

  it("an empty tree serves nothing", () => {
    expect(paths(tilesForSize(0))).toEqual([]);
  });

  it("matches the spec's example of a tree of 70,000 leaves", () => {
    const hash = [...tilesForSize(70000)].filter((t): t is HashTileId => !isEntryBundle(t));
    const at = (level: number) => hash.filter((t) => t.level === level);
    expect(at(0).length).toBe(274);
    expect(at(0).filter((t) => t.width === 256).length).toBe(273);
    expect(at(0)[273]).toEqual({ level: 0, index: 273, width: 112 });
    expect(at(1)).toEqual([
      { level: 1, index: 0, width: 256 },
      { level: 1, index: 1, width: 17 },
    ]);
    expect(at(2)).toEqual([{ level: 2, index: 0, width: 1 }]);
    expect(at(3)).toEqual([]);
  });

  it("partialTileWidth works past 2^32", () => {
    const size = 2 ** 53 - 1; // all ones: 255 at levels 0..5, then 2^5-1
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((l) => partialTileWidth(size, l))).toEqual([
      255, 255, 255, 255, 255, 255, 31, 0,
    ]);
    expect(partialTileWidth(2 ** 40 + 3 * 256 ** 4, 4)).toBe(3);
    expect(partialTileWidth(300, 0)).toBe(44);
    expect(partialTileWidth(300, 1)).toBe(1);
    expect(partialTileWidth(256, 0)).toBe(0);
  });

  it("tilesBetween lists what a sequencer writes near tile index 2^40", () => {
    const size = 2 ** 40 * 256; // completes level-0 tile 2^40 - 1
    expect(paths(tilesBetween(size - 1, size))).toEqual([
      "tile/0/x001/x099/x511/x627/775",
      "tile/1/x004/x294/x967/295",
      "tile/2/x016/x777/215",
      "tile/3/x065/535",
      "tile/4/255",
      "tile/5/000",
      "tile/6/000.p/1",
      "tile/entries/x001/x099/x511/x627/775",
    ]);
    expect(paths(tilesBetween(size, size + 1))).toEqual([
      "tile/0/x001/x099/x511/x627/776.p/1",
      "tile/entries/x001/x099/x511/x627/776.p/1",
    ]);
  });

  it("tilesBetween is tilesForSize minus what the old size already served", () => {
    const sizes = [0, 1, 2, 255, 256, 257, 300, 511, 512, 65535, 65536, 65537, 70000];
    for (const a of sizes) {
      for (const b of sizes.filter((s) => s >= a)) {
        const before = new Set(paths(tilesForSize(a)));
        const want = paths(tilesForSize(b)).filter((p) => !before.has(p));
        expect(paths(tilesBetween(a, b)), `${a} -> ${b}`).toEqual(want);
      }
    }
  });

  it("rejects bad sizes", () => {
    expect(codeOf(() => tilesForSize(-1))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => tilesForSize(2 ** 53))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => tilesBetween(2, 1))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => partialTileWidth(1.5, 0))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => partialTileWidth(1, 64))).toBe("OUT_OF_RANGE");
  });
});

describe("tileForNode", () => {
  it.each([
    // [height, index, size, path, offset, count]
    [0, 0, 1, "tile/0/000.p/1", 0, 1],
    [0, 299, 300, "tile/0/001.p/44", 43, 1],
    [3, 5, 300, "tile/0/000", 40, 8],
    [8, 0, 256, "tile/1/000.p/1", 0, 1],
    [9, 1, 131072, "tile/1/000", 2, 2],
    [16, 0, 65536, "tile/2/000.p/1", 0, 1],
    [0, 2 ** 48, 2 ** 48 + 1, "tile/0/x001/x099/x511/x627/776.p/1", 0, 1],
    [52, 0, 2 ** 53 - 1, "tile/6/000.p/31", 0, 16],
    [51, 2, 2 ** 53 - 1, "tile/6/000.p/31", 16, 8],
  ])("node (%d, %d) of a tree of %d is in %s at %d (+%d)", (h, i, size, path, offset, count) => {
    const where = tileForNode(h, i, size);
    expect(formatTilePath(where.tile)).toBe(path);
    expect([where.offset, where.count]).toEqual([offset, count]);
  });

  it("finds every node of the 300-leaf tree among the tiles' hashes", () => {
    const built = buildAll(300);
    for (let h = 0; h <= 8; h++) {
      for (let i = 0; (i + 1) * 2 ** h <= 300; i++) {
        const { tile, offset, count } = tileForNode(h, i, 300);
        const hashes = decodeHashTile(built.get(formatTilePath(tile))!);
        const node = perfectSubtreeRoot(hashes.slice(offset, offset + count));
        expect(hexEncode(node), `node (${h}, ${i})`).toBe(hexEncode(referenceNode(h, i)));
      }
    }
  });

  it("rejects nodes the tree does not hold", () => {
    expect(codeOf(() => tileForNode(0, 300, 300))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => tileForNode(2, 74, 299))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => tileForNode(9, 0, 511))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => tileForNode(52, 1, 2 ** 53 - 1))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => tileForNode(-1, 0, 1))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => tileForNode(0, -1, 1))).toBe("OUT_OF_RANGE");
  });
});

describe("tile and bundle bytes match the reference vectors", () => {
  it("leaf hashes agree with the vectors", () => {
    expect(leafHashes.map(base64Encode)).toEqual(vectors.leafHashes);
  });

  for (const { treeSize, resources } of vectors.tiles) {
    describe(`size ${treeSize}`, () => {
      const built = buildAll(treeSize);

      it("builds exactly the served resources", () => {
        expect([...built.keys()].sort()).toEqual(resources.map((r) => r.path).sort());
      });

      it.each(resources)("$path", (r) => {
        const data = built.get(r.path)!;
        expect(data.length).toBe(r.length);
        expect(sha256Hex(data)).toBe(r.sha256);
        if (r.data !== undefined) expect(base64Encode(data)).toBe(r.data);

        const tile = parseTilePath(r.path);
        if (tile.level === "entries") {
          const first = tile.index * TILE_WIDTH;
          expect(decodeEntryBundle(data, tile.width)).toEqual(
            leaves.slice(first, first + tile.width),
          );
        } else {
          // The same bytes from the definition of a node, through buildHashTile.
          const fromNodes = buildHashTile(tile, referenceNode);
          expect(sha256Hex(fromNodes)).toBe(r.sha256);
          expect(decodeHashTile(data, tile.width).length).toBe(tile.width);
        }
      });
    });
  }
});

describe("incremental building", () => {
  /** Grows a tile store through `sizes`, reading partial tiles back from it. */
  function grow(sizes: number[]): Map<string, Uint8Array> {
    const store = new Map<string, Uint8Array>();
    const read = (tile: TileId) => {
      const data = store.get(formatTilePath(tile));
      if (data === undefined) throw new Error(`missing ${formatTilePath(tile)}`);
      return data;
    };
    let size = 0;
    for (const next of sizes) {
      const hashTiles = appendHashTiles(size, read, leafHashes.slice(size, next));
      const bundles = appendEntryBundles(size, read, leaves.slice(size, next));
      const written = [...hashTiles, ...bundles].map((t) => formatTilePath(t.tile));
      expect(written, `${size} -> ${next}`).toEqual(paths(tilesBetween(size, next)));
      for (const t of [...hashTiles, ...bundles]) store.set(formatTilePath(t.tile), t.data);
      size = next;
    }
    return store;
  }

  it("growing through the vector sizes serves every vector resource", () => {
    const steps = vectors.tiles.map((t) => t.treeSize);
    const store = grow(steps);
    for (const { resources } of vectors.tiles) {
      for (const r of resources) expect(sha256Hex(store.get(r.path)!), r.path).toBe(r.sha256);
    }
  });

  it("any sequence of batches gives the same tiles as one batch (property)", () => {
    const full = buildAll(300);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 299 }), { maxLength: 12 }), (cuts) => {
        const store = grow([...cuts.sort((a, b) => a - b), 300]);
        for (const path of paths(tilesForSize(300))) {
          expect(hexEncode(store.get(path)!), path).toBe(hexEncode(full.get(path)!));
        }
      }),
      { numRuns: 40 },
    );
  });

  it("builds levels 1 and 2 of a 70,000-leaf tree, in one batch or many", () => {
    const size = 70000;
    const hashes = Array.from({ length: size }, (_, i) =>
      sha256(Uint8Array.of(Math.floor(i / 65536), Math.floor(i / 256) % 256, i % 256)),
    );
    const memo = new Map<string, Uint8Array>();
    const node = (h: number, i: number): Uint8Array => {
      const key = `${h}/${i}`;
      let v = memo.get(key);
      if (v === undefined) {
        v = h === 0 ? hashes[i]! : hashChildren(node(h - 1, 2 * i), node(h - 1, 2 * i + 1));
        memo.set(key, v);
      }
      return v;
    };
    const oneShot = appendHashTiles(0, () => new Uint8Array(0), hashes);
    const hashPaths = paths(tilesForSize(size)).filter((p) => !p.startsWith("tile/entries/"));
    expect(oneShot.map((t) => formatTilePath(t.tile))).toEqual(hashPaths);
    for (const { tile, data } of oneShot) {
      if (tile.level > 0) {
        expect(hexEncode(data), formatTilePath(tile)).toBe(hexEncode(buildHashTile(tile, node)));
      }
    }

    const store = new Map<string, Uint8Array>();
    const read = (tile: TileId) => store.get(formatTilePath(tile))!;
    let old = 0;
    for (const next of [1, 255, 256, 511, 513, 65535, 65536, 65537, 66000, size]) {
      for (const t of appendHashTiles(old, read, hashes.slice(old, next))) {
        store.set(formatTilePath(t.tile), t.data);
      }
      old = next;
    }
    for (const { tile, data } of oneShot) {
      expect(hexEncode(store.get(formatTilePath(tile))!), formatTilePath(tile)).toBe(
        hexEncode(data),
      );
    }
  });

  it("appending nothing changes nothing", () => {
    expect(appendHashTiles(5, () => new Uint8Array(0), [])).toEqual([]);
    expect(appendEntryBundles(5, () => new Uint8Array(0), [])).toEqual([]);
  });

  it("rejects a stored partial tile of the wrong width", () => {
    const wrong = () => encodeHashTile(leafHashes.slice(0, 3));
    expect(codeOf(() => appendHashTiles(4, wrong, [leafHashes[4]!]))).toBe("MALFORMED");
    const wrongBundle = () => encodeEntryBundle(leaves.slice(0, 3));
    expect(codeOf(() => appendEntryBundles(4, wrongBundle, [leaves[4]!]))).toBe("MALFORMED");
  });

  it("asks for the right partial tiles", () => {
    const asked: string[] = [];
    const read = (tile: TileId) => {
      asked.push(formatTilePath(tile));
      return tile.level === "entries"
        ? encodeEntryBundle(leaves.slice(0, tile.width))
        : encodeHashTile(leafHashes.slice(0, tile.width));
    };
    appendHashTiles(257 + 256 * 3, read, [leafHashes[0]!]);
    appendEntryBundles(300, read, [leaves[0]!]);
    expect(asked).toEqual(["tile/0/004.p/1", "tile/entries/001.p/44"]);
  });
});

describe("hash tiles", () => {
  it("round trips", () => {
    const hashes = leafHashes.slice(0, 256);
    const bytes = encodeHashTile(hashes);
    expect(bytes.length).toBe(FULL_TILE_BYTES);
    expect(decodeHashTile(bytes)).toEqual(hashes);
    expect(decodeHashTile(bytes, 256)).toEqual(hashes);
  });

  it("round trips any 1..256 hashes (property)", () => {
    const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(
      fc.property(fc.array(hash, { minLength: 1, maxLength: 256 }), (hashes) => {
        expect(decodeHashTile(encodeHashTile(hashes), hashes.length)).toEqual(hashes);
      }),
      { numRuns: 50 },
    );
  });

  it("rejects bad encodings", () => {
    const h = leafHashes[0]!;
    expect(codeOf(() => decodeHashTile(new Uint8Array(0)))).toBe("MALFORMED");
    expect(codeOf(() => decodeHashTile(new Uint8Array(33)))).toBe("MALFORMED");
    expect(codeOf(() => decodeHashTile(new Uint8Array(31)))).toBe("MALFORMED");
    expect(codeOf(() => decodeHashTile(new Uint8Array(257 * 32)))).toBe("MALFORMED");
    expect(codeOf(() => decodeHashTile(new Uint8Array(64), 3))).toBe("MALFORMED");
    expect(codeOf(() => encodeHashTile([]))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => encodeHashTile(new Array(257).fill(h)))).toBe("TOO_LARGE");
    expect(codeOf(() => encodeHashTile([h, h.subarray(1)]))).toBe("MALFORMED");
  });

  it("perfectSubtreeRoot of a full tile is the level-1 hash", () => {
    expect(hexEncode(perfectSubtreeRoot(leafHashes.slice(0, 256)))).toBe(
      hexEncode(referenceNode(8, 0)),
    );
    expect(perfectSubtreeRoot([leafHashes[7]!])).toEqual(leafHashes[7]);
    expect(codeOf(() => perfectSubtreeRoot(leafHashes.slice(0, 3)))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => perfectSubtreeRoot([]))).toBe("OUT_OF_RANGE");
  });

  it("buildHashTile reads the nodes at height 8·level in order", () => {
    const calls: [number, number][] = [];
    const tile: HashTileId = { level: 2, index: 2 ** 40, width: 3 };
    buildHashTile(tile, (height, index) => {
      calls.push([height, index]);
      return leafHashes[0]!;
    });
    expect(calls).toEqual([
      [16, 2 ** 48],
      [16, 2 ** 48 + 1],
      [16, 2 ** 48 + 2],
    ]);
    const bundle = { level: "entries", index: 0, width: 1 } as unknown as HashTileId;
    expect(codeOf(() => buildHashTile(bundle, () => leafHashes[0]!))).toBe("OUT_OF_RANGE");
    const tooFar: HashTileId = { level: 0, index: 2 ** 46, width: 256 };
    expect(codeOf(() => buildHashTile(tooFar, () => leafHashes[0]!))).toBe("OUT_OF_RANGE");
  });
});

describe("entry bundles", () => {
  it("encodes each entry behind its big-endian uint16 length", () => {
    const bytes = encodeEntryBundle([new Uint8Array(0), Uint8Array.of(7), new Uint8Array(258)]);
    expect(Array.from(bytes.subarray(0, 6))).toEqual([0, 0, 0, 1, 7, 1]);
    expect(bytes[6]).toBe(2);
    expect(bytes.length).toBe(2 + 3 + 2 + 258);
  });

  it("round trips", () => {
    const entries = leaves.slice(0, 256);
    expect(decodeEntryBundle(encodeEntryBundle(entries), 256)).toEqual(entries);
    const big = new Uint8Array(MAX_ENTRY_SIZE).fill(0xab);
    expect(decodeEntryBundle(encodeEntryBundle([big]))).toEqual([big]);
  });

  it("round trips any 1..256 entries (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 600 }), { minLength: 1, maxLength: 256 }),
        (entries) => {
          expect(decodeEntryBundle(encodeEntryBundle(entries), entries.length)).toEqual(entries);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("gives the same entries as views of the bundle (entryBundleViews), and copies (decodeEntryBundle)", () => {
    const bytes = encodeEntryBundle([Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)]);
    const views = entryBundleViews(bytes, 3);
    const copies = decodeEntryBundle(bytes, 3);
    expect(views).toEqual(copies);
    expect(views.every((v) => v.buffer === bytes.buffer)).toBe(true);
    expect(copies.some((c) => c.buffer === bytes.buffer)).toBe(false);
    expect(codeOf(() => entryBundleViews(bytes.subarray(0, bytes.length - 1)))).toBe("MALFORMED");
    expect(codeOf(() => entryBundleViews(bytes, 2))).toBe("MALFORMED");
  });

  it("decodes from a view into a larger buffer", () => {
    const inner = encodeEntryBundle([Uint8Array.of(1, 2), Uint8Array.of(3)]);
    const outer = new Uint8Array(inner.length + 10);
    outer.set(inner, 5);
    expect(decodeEntryBundle(outer.subarray(5, 5 + inner.length))).toEqual([
      Uint8Array.of(1, 2),
      Uint8Array.of(3),
    ]);
  });

  it("rejects every truncation", () => {
    const entries = [Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(9, 9)];
    const bytes = encodeEntryBundle(entries);
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(
        codeOf(() => decodeEntryBundle(bytes.subarray(0, cut), 3)),
        `cut ${cut}`,
      ).toBe("MALFORMED");
    }
    // Cuts inside an entry or its length are malformed even without an expected width.
    for (const cut of [0, 1, 2, 3, 4, 6, 8]) {
      expect(
        codeOf(() => decodeEntryBundle(bytes.subarray(0, cut))),
        `cut ${cut}`,
      ).toBe("MALFORMED");
    }
  });

  it("rejects trailing bytes and extra entries", () => {
    const bytes = encodeEntryBundle([Uint8Array.of(1)]);
    expect(codeOf(() => decodeEntryBundle(Uint8Array.of(...bytes, 0)))).toBe("MALFORMED");
    expect(codeOf(() => decodeEntryBundle(Uint8Array.of(...bytes, 0, 5)))).toBe("MALFORMED");
    expect(codeOf(() => decodeEntryBundle(Uint8Array.of(...bytes, 0, 0), 1))).toBe("MALFORMED");
    const full = encodeEntryBundle(new Array(256).fill(new Uint8Array(0)));
    expect(decodeEntryBundle(full).length).toBe(256);
    expect(codeOf(() => decodeEntryBundle(Uint8Array.of(...full, 0, 0)))).toBe("MALFORMED");
  });

  it("rejects oversized entries, too many and no entries", () => {
    let error: unknown;
    try {
      encodeEntryBundle([Uint8Array.of(1), new Uint8Array(MAX_ENTRY_SIZE + 1)]);
    } catch (e) {
      error = e;
    }
    expect(isVellumError(error, "TOO_LARGE")).toBe(true);
    expect((error as Error).message).toContain("65535");
    expect(codeOf(() => encodeEntryBundle(new Array(257).fill(new Uint8Array(0))))).toBe(
      "TOO_LARGE",
    );
    expect(codeOf(() => encodeEntryBundle([]))).toBe("OUT_OF_RANGE");
    expect(codeOf(() => decodeEntryBundle(new Uint8Array(0)))).toBe("MALFORMED");
  });

  it("bundle ids narrow by level", () => {
    const b: EntryBundleId = { level: "entries", index: 1, width: 44 };
    expect(formatTilePath(b)).toBe("tile/entries/001.p/44");
  });
});
