/**
 * The offline check (src/log/fsck.ts) on a real log's storage (memory driver), damaged one way
 * at a time through the storage API: each fault is found, reported once, and named (entry
 * index, tile, checkpoint size); a clean log reports nothing. The CLI around it (exit statuses,
 * LevelDB, LOCKED) is tested in test/cli/fsck.test.ts.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { utf8Encode } from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";
import { decodeLeaf, encodeLeafAndHash } from "../../src/core/entry.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { type FsckReport, fsck } from "../../src/log/fsck.js";
import { type Log, Log as LogClass } from "../../src/log/log.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { Tree } from "../../src/log/tree.js";
import { EntryBatch } from "../../src/storage/entry-batch.js";
import { EraFilter, FILTER_BLOCKS, filterBlockOf } from "../../src/storage/era-filter.js";
import {
  checkpointKey,
  encodeIndex,
  entryKey,
  FILTERED_KEY,
  filterKey,
  idKey,
  LAYOUT_KEY,
  payloadKey,
  STATE_KEY,
  tileKey,
} from "../../src/storage/kv-log-layout.js";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { decodeState, encodeState } from "../../src/storage/tree-state.js";
import type { KeyValueStore, RangeOptions } from "../../src/storage/types.js";
import { ORIGIN, openMemoryLog, payloadOf, SEED } from "./helpers.js";

const SIZE = 600; // level-0 tiles 0/0, 0/1 (full) and 0/2 (width 88); level-1 tile 1/0 (width 2)

let log: Log;
let db: MemoryDatabase;
let kv: KeyValueStore;

beforeEach(async () => {
  // Payload dedup, so every kind of lookup index exists to be checked (and damaged).
  ({ log, db } = await openMemoryLog(undefined, { dedup: "payload" }));
  for (let at = 0; at < SIZE; at += 100) {
    await log.submitMany(Array.from({ length: 100 }, (_, i) => payloadOf(at + i)));
  }
  await log.submit(payloadOf(0, "keyed"), { idempotencyKey: "k1" }); // entry 600
  await log.close();
  kv = db.namespace("log");
});

const check = (options: { lastPublished?: string; chunk?: number; kv?: KeyValueStore } = {}) =>
  fsck({ kv, verifierKey: log.signer.verifierKey, ...options });

const put = (key: Uint8Array, value: Uint8Array) => kv.write([{ type: "put", key, value }]);

async function flipByte(key: Uint8Array, offset: number): Promise<void> {
  const value = (await kv.get(key))!.slice();
  value[offset]! ^= 0x01;
  await put(key, value);
}

const messages = (r: FsckReport) => r.problems.map((p) => p.message);

describe("fsck", () => {
  it("finds nothing wrong with a clean log, and says what it checked", async () => {
    const r = await check({ lastPublished: log.checkpoint.note });
    expect(messages(r)).toEqual([]);
    expect(r).toMatchObject({
      clean: true,
      problemCount: 0,
      origin: ORIGIN,
      size: 601,
      entries: 601,
      // Every complete node: 601 leaves and 601 − popcount(601) = 596 interior nodes.
      nodes: 601 + 596,
      tiles: 4,
      lastPublished: 601,
      indexes: { id: 601, leafHash: 601, payload: 601, idempotencyKey: 1 },
    });
    // A checkpoint per batch: sizes 0, 100, …, 600 and 601.
    expect(r.checkpoints).toBe(8);
  });

  it("reads storage in bounded chunks (memory stays flat however large the log)", async () => {
    const limits: (number | undefined)[] = [];
    const counting: KeyValueStore = {
      ...kv,
      get: (k) => kv.get(k),
      getMany: (k) => kv.getMany(k),
      range: (o: RangeOptions) => {
        limits.push(o.limit);
        return kv.range(o);
      },
    };
    const progress: number[] = [];
    const r = await fsck({
      kv: counting,
      verifierKey: log.signer.verifierKey,
      chunk: 7,
      onProgress: (p) => p.phase === "entries" && progress.push(p.done),
    });
    expect(r).toMatchObject({ clean: true, entries: 601, nodes: 1197, tiles: 4, checkpoints: 8 });
    expect(limits.every((l) => l !== undefined && l <= 4096)).toBe(true);
    expect(progress.slice(0, 3)).toEqual([7, 14, 21]);
  });

  it("names an entry whose timestamp goes back (timestamps never decrease with the index)", async () => {
    // A consistent, signed log whose second entry is older than its first: only a broken
    // sequencer writes that (ids.ts keeps timestamps monotonic), so it is built by hand.
    const raw = new MemoryDatabase().namespace("log");
    const store = new KvLogStore(raw);
    const signer = new CheckpointSigner(ORIGIN, SEED);
    const tree = await Tree.load((l, i) => store.stratum(l, i), 0, []);
    await store.create("key", signer.sign(0, tree.root(), 1).note);
    const ids = [1, 2].map((n) => new Uint8Array(16).fill(n));
    const leaves = [2_000_000, 1_000_000].map((timestamp, i) =>
      encodeLeafAndHash({ id: ids[i]!, timestamp, submitter: undefined, payload: payloadOf(i) }),
    );
    const strata = tree.append(leaves.map((l) => l.leafHash));
    await store.commit({
      entries: EntryBatch.of(
        leaves.map((l, i) => ({
          index: i,
          leaf: l.leaf,
          id: ids[i]!,
          leafHash: l.leafHash,
        })),
      ),
      keyAliases: [],
      strata,
      state: { size: 2, compact: tree.compactHashes() },
      checkpoint: { size: 2, note: signer.sign(2, tree.root(), 2).note },
    });
    const r = await fsck({ kv: raw, verifierKey: signer.verifierKey });
    expect(messages(r)).toEqual([
      "entry 1 has timestamp 1000000, before entry 0's 2000000: timestamps must never decrease",
    ]);
  });

  it("names a leaf whose bytes changed, once", async () => {
    await flipByte(entryKey(300), 30);
    const r = await check({ lastPublished: log.checkpoint.note });
    expect(r.problemCount).toBe(1);
    expect(r.problems[0]).toMatchObject({ kind: "entry", index: 300 });
    expect(r.problems[0]!.message).toMatch(
      /^entry 300: its stored leaf hashes to \w+…, tile 0\/1 holds \w+…$/,
    );
    // The last leaf of a tree of odd size has no parent yet to tell leaf and tile apart.
    await flipByte(entryKey(600), 30);
    expect(messages(await check())[1]).toMatch(/^entry 600: its stored leaf hashes to /);
  });

  it("names a missing entry, once", async () => {
    await kv.write([{ type: "del", key: entryKey(597) }]);
    const r = await check();
    expect(messages(r)).toEqual(["entry 597 is missing from storage"]);
    await kv.write([{ type: "del", key: entryKey(600) }]); // the last one
    expect(messages(await check())).toEqual([
      "entry 597 is missing from storage",
      "entry 600 is missing from storage",
    ]);
  });

  it("names a tile node that is not the hash of its children, once", async () => {
    // Row 1 of stratum 0/1 starts after its 256 row-0 hashes; position 5 is node 1/133.
    await flipByte(tileKey(0, 1), 2 + (256 + 5) * 32 + 7);
    const r = await check();
    expect(r.problemCount).toBe(1);
    expect(r.problems[0]!.message).toMatch(
      /^tile 0\/1: node 1\/133 is \w+…, the hash of its children is \w+…$/,
    );
    // A level-0 hash: the entry disagrees with it, and its stored parent agrees with the entry,
    // so the tile is named (and nothing above it).
    await flipByte(tileKey(0, 0), 2 + 10 * 32);
    expect(messages(await check())).toEqual([
      expect.stringMatching(
        /^tile 0\/0: the level-0 hash of entry 10 is \w+…, the entry hashes to \w+… and its parent node agrees with the entry$/,
      ),
      expect.stringMatching(/^tile 0\/1: node 1\/133 is /),
    ]);
    // The same for a right child (entry 11's parent was computed when it arrived).
    await flipByte(tileKey(0, 0), 2 + 10 * 32);
    await flipByte(tileKey(0, 0), 2 + 11 * 32);
    expect(messages(await check())[0]).toMatch(/^tile 0\/0: the level-0 hash of entry 11 is /);
  });

  it("names a missing tile, a tile that does not decode, and a tile beyond the tree", async () => {
    await kv.write([{ type: "del", key: tileKey(0, 1) }]);
    await put(tileKey(0, 2), Uint8Array.of(0, 88, 1, 2, 3));
    await put(tileKey(0, 9), (await kv.get(tileKey(0, 0)))!);
    await put(tileKey(3, 0), (await kv.get(tileKey(0, 0)))!);
    expect(messages(await check())).toEqual([
      "tile 0/1 is missing from storage",
      expect.stringMatching(/^stored tile 0\/2 does not decode: stored tile 0\/2 has a bad length/),
      "stored tile 0/9 lies beyond the tree (size 601)",
      "stored tile 3/0 lies beyond the tree (size 601)",
    ]);
  });

  it("names an edge tile that holds more than the tree", async () => {
    // The level-1 edge tile of the tree of 601 holds 2 hashes; make it claim 3.
    const edge = (await kv.get(tileKey(1, 0)))!;
    const grown = new Uint8Array(edge.length + 32 + 32);
    grown.set(edge);
    grown[1] = 3;
    // Row 0 gets a third hash; row 1 stays one hash (floor(3/2) = 1), moved along.
    grown.set(edge.subarray(2 + 64, 2 + 96), 2 + 96);
    await put(tileKey(1, 0), grown.subarray(0, 2 + 4 * 32));
    expect(messages(await check())).toContain(
      "edge tile 1/0 holds 3 hashes, the tree of size 601 has 2",
    );
  });

  it("names a checkpoint whose signature fails, and one signed over another root", async () => {
    const note = new TextDecoder().decode((await kv.get(checkpointKey(200)))!);
    await put(
      checkpointKey(200),
      utf8Encode(note.replace(/\n— (\S+) (\S)/, (_m, n, c) => `\n— ${n} ${c === "A" ? "B" : "A"}`)),
    );
    // Signed with the log's own key, but over a root of another tree: a fork in storage.
    const forged = new CheckpointSigner(ORIGIN, SEED).sign(400, new Uint8Array(32).fill(9), 1);
    await put(checkpointKey(400), utf8Encode(forged.note));
    expect(messages(await check())).toEqual([
      expect.stringMatching(
        /^checkpoint at size 200 does not verify with the log's key test\.example\/log: /,
      ),
      expect.stringMatching(
        /^checkpoint at size 400 has root 0909090909090909…, the tree re-derived at size 400 has \w+…$/,
      ),
    ]);
  });

  it("names a checkpoint under the wrong size, one beyond the tree, and a bad DATA/checkpoint", async () => {
    await put(checkpointKey(300), (await kv.get(checkpointKey(200)))!);
    const signer = new CheckpointSigner(ORIGIN, SEED);
    const ahead = signer.sign(700, new Uint8Array(32).fill(1), 2);
    await put(checkpointKey(700), utf8Encode(ahead.note));
    const other = new CheckpointSigner(ORIGIN, new Uint8Array(32).fill(3)).sign(
      100,
      new Uint8Array(32),
      3,
    );
    expect(messages(await check({ lastPublished: other.note }))).toEqual([
      expect.stringMatching(/^DATA\/checkpoint does not verify with the log's key/),
      "checkpoint stored under size 300 is for size 200",
      "checkpoint at size 700 is beyond the stored tree (size 601): entries were lost",
    ]);
    expect(messages(await check({ lastPublished: ahead.note }))).toContain(
      "DATA/checkpoint has size 700 but storage holds a tree of 601: data was lost or rolled back",
    );
  });

  it("names lookup keys that point elsewhere, are missing, or are extra", async () => {
    const leaf = (await kv.get(entryKey(42)))!;
    await put(idKey(decodeLeaf(leaf).id), encodeIndex(43));
    await kv.write([{ type: "del", key: payloadKey(sha256(payloadOf(44))) }]);
    await put(payloadKey(new Uint8Array(32).fill(5)), encodeIndex(9000));
    expect(messages(await check())).toEqual([
      expect.stringMatching(/^the id index maps to 43 instead of entry 42 \(id [0-9a-f-]{36}\)$/),
      "the payload index lacks entry 44 (payload hash)",
      "the payload index holds 1 key(s) pointing beyond the tree (size 601) or damaged",
    ]);
  });

  it("names a layout key it does not know", async () => {
    await put(LAYOUT_KEY, Uint8Array.of(9));
    expect(messages(await check())).toContain("the layout key (l) holds an unknown layout");
  });

  it("names an entry its era's leaf-hash filter lacks (a lookup by it would miss)", async () => {
    // Era 0 (2^18 entries) is not finished here; as if it were, its filter written as the store
    // would write it, from the stored leaves.
    const filter = new EraFilter();
    const hashes = [];
    for (let i = 0; i < 601; i++) {
      hashes.push(hashLeaf((await kv.get(entryKey(i)))!));
      filter.add(hashes[i]!);
    }
    await kv.write([
      ...Array.from({ length: FILTER_BLOCKS }, (_, b) => ({
        type: "put" as const,
        key: filterKey(b, 0),
        value: filter.block(b).slice(),
      })),
      { type: "put", key: FILTERED_KEY, value: Uint8Array.of(0, 0, 0, 1) },
    ]);
    expect(messages(await check())).toEqual([]);
    await kv.write([{ type: "del", key: filterKey(filterBlockOf(hashes[42]!), 0) }]);
    await put(filterKey(filterBlockOf(hashes[77]!), 0), new Uint8Array(64));
    expect(messages(await check())).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^the leaf-hash filter of era 0 lacks the block of entry 42 \(leaf hash \w+…\): a lookup by it would miss$/,
        ),
        expect.stringMatching(/^the leaf-hash filter of era 0 does not hold entry 77 /),
      ]),
    );
    await put(FILTERED_KEY, Uint8Array.of(1));
    expect(messages(await check())).toContain("the count of filtered eras (f) is damaged");
  });

  it("names a tree state that disagrees with the leaves, and entries beyond it", async () => {
    const state = decodeState((await kv.get(STATE_KEY))!);
    const compact = state.compact.map((h) => h.slice());
    compact[1]![0]! ^= 1;
    await put(STATE_KEY, encodeState({ size: state.size, compact }));
    await put(entryKey(601), (await kv.get(entryKey(0)))!);
    expect(messages(await check())).toEqual([
      "entry 601 is stored beyond the tree's size 601",
      expect.stringMatching(
        /^the tree state's compact range hash 1 is \w+…, the re-derived tree's is \w+…$/,
      ),
    ]);
    await kv.write([{ type: "del", key: STATE_KEY }]);
    const r = await check();
    expect(messages(r)[0]).toBe("the tree state (key s) is missing");
    expect(r.size).toBeUndefined();
  });
});

describe("fsck of a log with its leaves in an entries store (layout 3)", () => {
  let leafKv: KeyValueStore;
  let log3: Log;

  beforeEach(async () => {
    const entries = new MemoryDatabase();
    leafKv = entries.namespace("log");
    ({ log: log3, db } = await openMemoryLog(undefined, { dedup: "payload", entries: leafKv }));
    await log3.submitMany(Array.from({ length: 300 }, (_, i) => payloadOf(i)));
    await log3.close();
    kv = db.namespace("log");
  });

  const check3 = (options: { entries?: KeyValueStore } = { entries: leafKv }) =>
    fsck({ kv, verifierKey: log3.signer.verifierKey, ...options });

  it("re-hashes the leaves from the entries store, and takes leaves past the size for a cut-off batch", async () => {
    expect(await kv.get(LAYOUT_KEY)).toEqual(Uint8Array.of(3));
    expect(await kv.get(entryKey(0))).toBeUndefined();
    const clean = await check3();
    expect(messages(clean)).toEqual([]);
    expect(clean).toMatchObject({ clean: true, size: 300, entries: 300, strayLeaves: 0 });
    // The leaves of a batch whose own write a crash cut off: no problem, counted.
    await leafKv.write([
      { type: "put", key: entryKey(300), value: (await leafKv.get(entryKey(0)))! },
    ]);
    expect(await check3()).toMatchObject({ clean: true, entries: 300, strayLeaves: 1 });
  });

  it("names a damaged or missing leaf in the entries store, and a missing entries store", async () => {
    const leaf = (await leafKv.get(entryKey(7)))!.slice();
    leaf[leaf.length - 1]! ^= 1;
    await leafKv.write([
      { type: "put", key: entryKey(7), value: leaf },
      { type: "del", key: entryKey(8) },
    ]);
    const r = await check3();
    expect(r.clean).toBe(false);
    expect(messages(r)).toEqual([
      expect.stringMatching(/^entry 7: its stored leaf hashes to \w+…, tile 0\/0 holds \w+…$/),
      "entry 8 is missing from storage",
    ]);
    await put(entryKey(3), (await leafKv.get(entryKey(3)))!);
    expect(messages(await check3())).toContain(
      "a leaf is stored in DATA/db (key 650000000000000003), where a log of layout 3 keeps none: its leaves are in DATA/entries",
    );
    const alone = await check3({});
    expect(messages(alone)[0]).toBe(
      "the log keeps its leaves in the entries database (layout 3), and there is none (DATA/entries is missing)",
    );
  });
});

describe("fsck of a layout-3 log whose last batch a crash cut off between its two writes", () => {
  /** 250 entries, then a batch to 550 whose own write lands and whose leaves never do; a crash. */
  async function cutOff() {
    const entriesDb = new MemoryDatabase();
    const dataDb = new MemoryDatabase();
    const logc = await LogClass.open({
      origin: ORIGIN,
      seed: SEED,
      kv: dataDb.namespace("log"),
      entries: entriesDb.namespace("log"),
      dedup: "payload",
      checkpointIntervalMs: 0,
      batchMaxEntries: 1000,
    });
    await logc.submitEach(
      Array.from({ length: 250 }, (_, i) => ({ payload: payloadOf(i), idempotencyKey: `k${i}` })),
    );
    let ownLanded!: () => void;
    const landed = new Promise<void>((r) => (ownLanded = r));
    entriesDb.faults = { write: () => "hang" };
    dataDb.faults = {
      write: (_ns, ops) => {
        if (ops.some((o) => o.type === "put" && o.key.length === 1 && o.key[0] === 0x75)) {
          setImmediate(ownLanded);
        }
        return "ok";
      },
    };
    void logc.submitEach(
      Array.from({ length: 300 }, (_, i) => ({
        payload: payloadOf(1000 + i),
        idempotencyKey: `k${1000 + i}`,
      })),
    );
    await landed;
    const entries = entriesDb.simulateRestart();
    const data = dataDb.simulateRestart();
    return { logc, entries, data };
  }

  it("checks the log as of the size before it, and says so without calling it a problem", async () => {
    const { logc, entries, data } = await cutOff();
    const options = { verifierKey: logc.signer.verifierKey, entries: entries.namespace("log") };
    const r = await fsck({ kv: data.namespace("log"), ...options });
    expect(messages(r)).toEqual([]);
    expect(r).toMatchObject({
      clean: true,
      size: 250,
      entries: 250,
      unfinishedBatch: { from: 250, to: 550 },
      indexes: { id: 250, leafHash: 250, payload: 250, idempotencyKey: 250 },
    });

    // Without its undo record it is damage: entries missing, keys and a checkpoint beyond.
    const copy = MemoryDatabase.fromSnapshot(data.snapshot());
    await copy.namespace("log").write([{ type: "del", key: Uint8Array.of(0x75) }]);
    const damaged = await fsck({ kv: copy.namespace("log"), ...options });
    expect(damaged.clean).toBe(false);
    expect(damaged.unfinishedBatch).toBeUndefined();

    // Opened, the log takes the batch back out; then fsck finds it clean with nothing unfinished.
    const reopened = await LogClass.open({
      origin: ORIGIN,
      seed: SEED,
      kv: data.namespace("log"),
      entries: entries.namespace("log"),
      checkpointIntervalMs: 0,
    });
    expect(reopened.size).toBe(250);
    await reopened.close();
    const after = await fsck({ kv: data.namespace("log"), ...options });
    expect(messages(after)).toEqual([]);
    expect(after.unfinishedBatch).toBeUndefined();
    expect(after).toMatchObject({ clean: true, size: 250 });
  });
});
