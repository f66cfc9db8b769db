/**
 * A log whose leaves are kept in an entries store of their own (layout 3) stages each batch's
 * leaves write as soon as the batch is prepared (LogStore.stageLeaves), and runs the batch's own
 * write alongside it. What must hold, checked here through the real sequencer over two memory
 * databases with write hooks: a batch's own write begins only once every earlier batch's leaves
 * are durable (so at most the last batch can lack its leaves, which load takes back out); a batch
 * staged behind one that fails leaves no leaf past the tree once the log has recovered, even
 * when its stage lands late; and a fault at the leaves write never loses an acknowledged entry.
 */
import { describe, expect, it } from "vitest";
import { bytesEqual, getUint64 } from "../../src/core/bytes.js";
import { Log } from "../../src/log/log.js";
import type { Receipt } from "../../src/log/receipt.js";
import { MemoryDatabase, type WriteFault } from "../../src/storage/memory.js";
import { decodeState } from "../../src/storage/tree-state.js";
import type { KeyValueStore, WriteOp } from "../../src/storage/types.js";
import { checkReceipt, keyedSubmitter, keyOf, payloadOf, waitForStatus } from "./helpers.js";

const ORIGIN = "example.com/staged";
const SEED = new Uint8Array(32).fill(7);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The entry indices a leaves write puts ("e" ‖ u64be index). */
const leafIndices = (ops: readonly WriteOp[]) =>
  ops.filter((o) => o.type === "put" && o.key[0] === 0x65).map((o) => getUint64(o.key, 1, "i"));

/** The tree size a batch's own write stores (its "s" key), or undefined for other writes. */
function batchSize(ops: readonly WriteOp[]): number | undefined {
  const state = ops.find((o) => o.type === "put" && o.key.length === 1 && o.key[0] === 0x73);
  return state?.type === "put" ? decodeState(state.value).size : undefined;
}

const storedLeaves = async (kv: KeyValueStore) =>
  (await kv.range({ gte: Uint8Array.of(0x65), lt: Uint8Array.of(0x66) })).map(([k]) =>
    getUint64(k, 1, "i"),
  );

/** Opens the log again over the same two databases (a restart). */
const reopenStaged = (db: MemoryDatabase, entriesDb: MemoryDatabase) =>
  Log.open({
    origin: ORIGIN,
    seed: SEED,
    kv: db.namespace("log"),
    entries: entriesDb.namespace("log"),
    checkpointIntervalMs: 0,
  });

async function openStaged(config: Partial<Parameters<typeof Log.open>[0]> = {}) {
  const db = new MemoryDatabase();
  const entriesDb = new MemoryDatabase();
  const leafKv = entriesDb.namespace("log");
  const log = await Log.open({
    origin: ORIGIN,
    seed: SEED,
    kv: db.namespace("log"),
    entries: leafKv,
    checkpointIntervalMs: 0,
    ...config,
  });
  return { log, db, entriesDb, leafKv };
}

describe("staged leaves writes (layout 3)", () => {
  it("starts a batch's own write only once earlier batches' leaves are durable, alongside its own leaves", async () => {
    const { log, db, entriesDb, leafKv } = await openStaged({ batchMaxEntries: 20 });
    const events: string[] = [];
    const durable = new Set<number>();
    const violations: string[] = [];
    let overlapped = 0;
    let alongside = 0;
    let lastSize = 0;
    let ownWriteUnderWay: number | undefined;
    entriesDb.faults = {
      write: async (_ns, ops): Promise<WriteFault> => {
        const indices = leafIndices(ops);
        if (ownWriteUnderWay !== undefined && indices.some((i) => i >= ownWriteUnderWay!)) {
          overlapped++;
        }
        await sleep(2);
        for (const i of indices) durable.add(i);
        events.push(`leaves ${indices[0]}..${indices[indices.length - 1]}`);
        return "ok";
      },
    };
    db.faults = {
      write: async (_ns, ops): Promise<WriteFault> => {
        const size = batchSize(ops);
        if (size === undefined) return "ok";
        // This batch's first index: the one after the last earlier batch's.
        const start = lastSize;
        lastSize = size;
        for (let i = 0; i < start; i++) {
          if (!durable.has(i))
            violations.push(`batch to ${size} began before leaf ${i} was durable`);
        }
        if (!durable.has(size - 1)) alongside++;
        ownWriteUnderWay = size;
        events.push(`batch to ${size}`);
        // Slow enough that the next batch is prepared, and its leaves staged, meanwhile.
        await sleep(15);
        ownWriteUnderWay = undefined;
        return "ok";
      },
    };
    const payloads = Array.from({ length: 200 }, (_, i) => payloadOf(i));
    const receipts: Receipt[] = await Promise.all(payloads.map((p) => log.submit(p)));
    expect(violations).toEqual([]);
    expect(overlapped).toBeGreaterThan(0);
    expect(alongside).toBeGreaterThan(0);
    expect(events.filter((e) => e.startsWith("batch")).length).toBeGreaterThan(1);
    expect(log.size).toBe(200);
    expect(await storedLeaves(leafKv)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    for (const i of [0, 57, 199]) await checkReceipt(log, receipts[i]!, payloads[i]!);
    await log.close();
  });

  it("leaves no leaf past the tree after a failed batch whose successor was staged, even when that stage lands late", async () => {
    const { log, db, leafKv } = await openStaged({
      batchMaxEntries: 10,
      recoveryMinMs: 5,
    });
    // Five entries in, then the next batch's own write fails once the batch after it has been
    // staged; that stage is held until well after the failure, so it lands while the log is
    // recovering.
    const first = await Promise.all([0, 1, 2, 3, 4].map((i) => log.submit(payloadOf(i))));
    let armed = true;
    let staged!: () => void;
    const secondStaged = new Promise<void>((r) => (staged = r));
    let releaseLate!: () => void;
    const late = new Promise<void>((r) => (releaseLate = r));
    let landed!: () => void;
    const landedLate = new Promise<void>((r) => (landed = r));
    // Held before it reaches the database (which would order it before later reads), as a
    // write still in an OS queue would be.
    const write = leafKv.write.bind(leafKv);
    leafKv.write = async (ops) => {
      if (armed && leafIndices(ops)[0] === 15) {
        staged();
        await late;
      }
      await write(ops);
      if (leafIndices(ops)[0] === 15) landed();
    };
    db.faults = {
      write: async (_ns, ops): Promise<WriteFault> => {
        if (armed && batchSize(ops) === 15) {
          await Promise.race([secondStaged, sleep(2000)]);
          armed = false;
          setTimeout(releaseLate, 30);
          return "fail";
        }
        return "ok";
      },
    };
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        log.submit(payloadOf(5 + i)).then(
          () => "stored",
          (e: { code?: string }) => e.code,
        ),
      ),
    );
    expect(armed).toBe(false);
    expect(outcomes.slice(0, 10)).toEqual(Array(10).fill("STORAGE_FAILURE"));
    await waitForStatus(log, "open");
    await landedLate;
    // Whatever the staged batch did, only the tree's leaves remain, and the log goes on.
    const size = log.size;
    expect(size).toBeGreaterThanOrEqual(5);
    expect(await storedLeaves(leafKv)).toEqual(Array.from({ length: size }, (_, i) => i));
    const more = await Promise.all([100, 101, 102].map((i) => log.submit(payloadOf(i))));
    expect(more.map((r) => r.index)).toEqual([size, size + 1, size + 2]);
    expect(await storedLeaves(leafKv)).toEqual(Array.from({ length: size + 3 }, (_, i) => i));
    await checkReceipt(log, first[4]!, payloadOf(4));
    await checkReceipt(log, more[2]!, payloadOf(102));
    await log.close();
  });
});

/**
 * What a fault at a batch's leaves write does (the batch's own write runs alongside, and lands):
 * the batch's submitters are refused (or wait, when the write hangs), the log recovers by itself,
 * and after a restart on what was durably applied every acknowledged entry is there and no leaf
 * lies past the tree. Where the leaves did not land, load takes the batch's own write back out
 * (its undo record): the batch is gone, and resubmitting its entries makes new ones. Where they
 * did ("persist-then-fail"), the whole batch is stored though its submitters heard a failure
 * ("it may or may not be in the log"), and resubmitting with the same idempotency keys returns
 * the originals.
 */
const leafFaults: {
  fault: WriteFault;
  outcome: "STORAGE_FAILURE" | "hang";
  landed: boolean;
}[] = [
  { fault: "fail", outcome: "STORAGE_FAILURE", landed: false },
  { fault: "persist-then-fail", outcome: "STORAGE_FAILURE", landed: true },
  // Acknowledged but not applied: caught by reading the batch's last leaf back.
  { fault: "lose", outcome: "STORAGE_FAILURE", landed: false },
  { fault: "hang", outcome: "hang", landed: false },
];

describe.each(leafFaults)("a $fault at a batch's leaves write (layout 3)", (row) => {
  it("acknowledges nothing of the batch and keeps every acknowledged entry", async () => {
    // A minute behind real time, so the restart below (on the real clock) is not refused as a
    // clock running behind the last checkpoint.
    const clock = () => Date.now() - 120_000;
    const undone: [number, number][] = [];
    const { log, db, entriesDb, leafKv } = await openStaged({
      clock,
      recoveryMinMs: 5,
      onBatchUndone: (from, to) => undone.push([from, to]),
    });
    const { acked, submit } = keyedSubmitter(log);
    await Promise.all([0, 1, 2, 3, 4].map((i) => submit(payloadOf(i))));
    let armed = true;
    entriesDb.faults = {
      write: (_ns, ops) => {
        if (armed && leafIndices(ops).length > 0) {
          armed = false;
          return row.fault;
        }
        return "ok";
      },
    };
    const faulted = [5, 6, 7].map((i) =>
      submit(payloadOf(i)).then(
        () => "stored",
        (e: { code?: string }) => e.code,
      ),
    );
    const sizeAfter = row.landed ? 8 : 5;
    if (row.outcome === "hang") {
      const first = await Promise.race([Promise.all(faulted), sleep(50).then(() => "pending")]);
      expect(first).toBe("pending");
      expect(log.size).toBe(5);
    } else {
      expect(await Promise.all(faulted)).toEqual(Array(3).fill("STORAGE_FAILURE"));
      await waitForStatus(log, "open");
      expect(log.size).toBe(sizeAfter);
      expect(undone).toEqual(row.landed ? [] : [[8, 5]]);
      expect(await storedLeaves(leafKv)).toEqual(Array.from({ length: sizeAfter }, (_, i) => i));
      await Promise.all([8, 9].map((i) => submit(payloadOf(i))));
    }

    // Kill the process: only what was durably applied survives.
    const restartedEntries = entriesDb.simulateRestart();
    const undoneAtRestart: [number, number][] = [];
    const again = await Log.open({
      origin: ORIGIN,
      seed: SEED,
      kv: db.simulateRestart().namespace("log"),
      entries: restartedEntries.namespace("log"),
      checkpointIntervalMs: 0,
      onBatchUndone: (from, to) => undoneAtRestart.push([from, to]),
    });
    // A hung leaves write never landed, while the batch's own write did: the restart undoes it.
    expect(undoneAtRestart).toEqual(row.outcome === "hang" ? [[8, 5]] : []);
    for (const { receipt, payload } of acked) {
      const entry = await again.entry(receipt.index);
      expect(bytesEqual(entry.leafHash, receipt.leafHash)).toBe(true);
      await checkReceipt(again, receipt, payload);
    }
    expect(await storedLeaves(restartedEntries.namespace("log"))).toEqual(
      Array.from({ length: again.size }, (_, i) => i),
    );
    // Resubmitting the faulted batch's entries with their keys: the originals where it landed,
    // new entries where it did not.
    const resubmitted = await Promise.all(
      [5, 6, 7].map((i) => again.submit(payloadOf(i), keyOf(payloadOf(i)))),
    );
    expect(resubmitted.map((r) => r.duplicate)).toEqual(Array(3).fill(row.landed));
    if (row.landed) expect(resubmitted.map((r) => r.index)).toEqual([5, 6, 7]);
    await again.close();
  });
});

describe("an unfinished batch taken back out (layout 3)", () => {
  it("leaves the log's database exactly as it was before the batch, and the log goes on", async () => {
    const clock = () => Date.now() - 120_000;
    const { log, db, entriesDb } = await openStaged({
      clock,
      dedup: "payload",
      batchMaxEntries: 1000,
    });
    const ns = () => db.namespace("log");
    const dump = async (kv: KeyValueStore) =>
      new Map(
        (await kv.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) }))
          // "u": the undo record of the last batch, which the undo deletes.
          .filter(([k]) => !(k.length === 1 && k[0] === 0x75))
          .map(([k, v]) => [Buffer.from(k).toString("hex"), Buffer.from(v).toString("hex")]),
      );
    // 250 entries in: the next batch starts inside a level-0 tile and crosses two more, and
    // makes the first level-1 tile.
    for (let at = 0; at < 250; at += 50) {
      await log.submitEach(
        Array.from({ length: 50 }, (_, i) => ({
          payload: payloadOf(at + i),
          ...keyOf(payloadOf(at + i)),
        })),
      );
    }
    const before = await dump(ns());
    const first = await log.receipt(249);

    // The next batch: 300 new entries with keys, and a duplicate of entry 3 under a new key (an
    // alias). Its leaves write never lands; its own write does; then the process dies.
    let ownLanded!: () => void;
    const landed = new Promise<void>((r) => (ownLanded = r));
    entriesDb.faults = {
      write: (_ns, ops) => (leafIndices(ops).some((i) => i >= 250) ? "hang" : "ok"),
    };
    db.faults = {
      write: (_ns, ops) => {
        if ((batchSize(ops) ?? 0) > 250) setImmediate(ownLanded);
        return "ok";
      },
    };
    const lost = Array.from({ length: 300 }, (_, i) => ({
      payload: payloadOf(1000 + i),
      ...keyOf(payloadOf(1000 + i)),
    }));
    const alias = { payload: payloadOf(3), idempotencyKey: "a new key for entry 3" };
    void log.submitEach([...lost, alias]);
    await landed;
    const stored = decodeState((await ns().get(Uint8Array.of(0x73)))!);
    expect(stored.size).toBe(550);
    expect((await dump(ns())).size).toBeGreaterThan(before.size);

    const undone: [number, number][] = [];
    const restartedEntries = entriesDb.simulateRestart();
    const restarted = db.simulateRestart();
    const again = await Log.open({
      origin: ORIGIN,
      seed: SEED,
      kv: restarted.namespace("log"),
      entries: restartedEntries.namespace("log"),
      checkpointIntervalMs: 0,
      onBatchUndone: (from, to) => undone.push([from, to]),
    });
    expect(undone).toEqual([[550, 250]]);
    expect(again.size).toBe(250);
    // Tree state, checkpoints, strata, and every lookup key (ids, leaf hashes, payload and key
    // hashes, the alias): as before the batch, byte for byte.
    expect(await dump(restarted.namespace("log"))).toEqual(before);
    expect(await storedLeaves(restartedEntries.namespace("log"))).toEqual(
      Array.from({ length: 250 }, (_, i) => i),
    );

    // The log goes on: the lost batch's entries are new, the alias's entry is the old one.
    await checkReceipt(again, first, payloadOf(249));
    const outcomes = await again.submitEach([...lost, alias]);
    const receipts = outcomes as Receipt[];
    expect(receipts.slice(0, 300).map((r) => r.duplicate)).toEqual(Array(300).fill(false));
    expect(receipts.slice(0, 300).map((r) => r.index)).toEqual(
      Array.from({ length: 300 }, (_, i) => 250 + i),
    );
    expect(receipts[300]!.duplicate).toBe(true);
    expect(receipts[300]!.index).toBe(3);
    await checkReceipt(again, receipts[299]!, payloadOf(1299));
    await checkReceipt(again, first, payloadOf(249));
    await again.close();
  });

  it("refuses to open a tree missing its last leaf without an undo record for it", async () => {
    const { log, db, entriesDb, leafKv } = await openStaged();
    await log.submitEach(Array.from({ length: 20 }, (_, i) => ({ payload: payloadOf(i) })));
    await log.close();
    // Damage: the last leaf gone, and with it no record of a batch to undo.
    await leafKv.write([{ type: "del", key: Uint8Array.of(0x65, 0, 0, 0, 0, 0, 0, 0, 19) }]);
    await db.namespace("log").write([{ type: "del", key: Uint8Array.of(0x75) }]);
    await expect(reopenStaged(db, entriesDb)).rejects.toThrow(
      /missing its last leaf, and no undo record is stored/,
    );
  });

  it("refuses, and changes nothing, when the undo record is another batch's or leaves before it are missing", async () => {
    const { log, db, entriesDb, leafKv } = await openStaged();
    const kv = db.namespace("log");
    /** Every key and value of both databases. */
    const dump = () =>
      Promise.all(
        [kv, leafKv].map(async (store) =>
          (await store.range({ gte: new Uint8Array(0), lt: Uint8Array.of(0xff) })).map(
            ([k, v]) => `${Buffer.from(k).toString("hex")}=${Buffer.from(v).toString("hex")}`,
          ),
        ),
      );
    const reopen = () => reopenStaged(db, entriesDb);
    const leaf = (i: number) => Uint8Array.of(0x65, 0, 0, 0, 0, 0, 0, 0, i);
    await log.submitEach(Array.from({ length: 20 }, (_, i) => ({ payload: payloadOf(i) })));
    const firstUndo = (await kv.get(Uint8Array.of(0x75)))!;
    await log.submitEach(Array.from({ length: 10 }, (_, i) => ({ payload: payloadOf(20 + i) })));
    await log.close();
    const secondUndo = (await kv.get(Uint8Array.of(0x75)))!;
    expect(Buffer.from(secondUndo).equals(Buffer.from(firstUndo))).toBe(false);
    const lastLeaf = (await leafKv.get(leaf(29)))!;
    await leafKv.write([{ type: "del", key: leaf(29) }]);

    // The record left by the batch before (0 to 20), not by the one missing its leaf (20 to 30).
    await kv.write([{ type: "put", key: Uint8Array.of(0x75), value: firstUndo }]);
    let before = await dump();
    await expect(reopen()).rejects.toThrow(
      /missing its last leaf, and the undo record is for a batch from 0 to 20/,
    );
    expect(await dump()).toEqual(before);

    // The right record, but a leaf of an earlier batch is gone too: storage is damaged.
    await kv.write([{ type: "put", key: Uint8Array.of(0x75), value: secondUndo }]);
    const earlier = (await leafKv.get(leaf(19)))!;
    await leafKv.write([{ type: "del", key: leaf(19) }]);
    before = await dump();
    await expect(reopen()).rejects.toThrow(
      /missing its last leaf, and entry 19 before its last batch is missing too/,
    );
    expect(await dump()).toEqual(before);

    // With entry 19 back, the same record takes the batch out, and the log is 20 entries again.
    await leafKv.write([{ type: "put", key: leaf(19), value: earlier }]);
    const again = await reopen();
    expect(again.size).toBe(20);
    expect(lastLeaf.length).toBeGreaterThan(0);
    await again.close();
  });
});
