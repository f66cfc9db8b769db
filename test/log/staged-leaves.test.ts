/**
 * A log whose leaves are kept in an entries store of their own (layout 3) stages each batch's
 * leaves write as soon as the batch is prepared (LogStore.stageLeaves), so it runs while the
 * previous batch's own write is under way. What must still hold, checked here through the real
 * sequencer over two memory databases with write hooks: every batch's leaves are durable before
 * the write that makes them part of the tree begins; a batch staged behind one that fails leaves
 * no leaf past the tree once the log has recovered, even when its stage lands late.
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
  it("makes each batch's leaves durable before its own write, while the previous batch's write runs", async () => {
    const { log, db, entriesDb, leafKv } = await openStaged({ batchMaxEntries: 20 });
    const events: string[] = [];
    const durable = new Set<number>();
    const violations: string[] = [];
    let overlapped = 0;
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
        for (let i = 0; i < size; i++) {
          if (!durable.has(i))
            violations.push(`batch to ${size} began before leaf ${i} was durable`);
        }
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
 * What a fault at a batch's leaves write does (the batch's own write never starts): the
 * batch's submitters are refused (or wait, when the write hangs), the log recovers by itself,
 * and after a restart on what was durably applied every acknowledged entry is there, the
 * faulted batch is not, and no leaf lies past the tree.
 */
const leafFaults: { fault: WriteFault; outcome: "STORAGE_FAILURE" | "hang" }[] = [
  { fault: "fail", outcome: "STORAGE_FAILURE" },
  { fault: "persist-then-fail", outcome: "STORAGE_FAILURE" },
  // Acknowledged but not applied: caught by reading the batch's last leaf back.
  { fault: "lose", outcome: "STORAGE_FAILURE" },
  { fault: "hang", outcome: "hang" },
];

describe.each(leafFaults)("a $fault at a batch's leaves write (layout 3)", (row) => {
  it("acknowledges nothing of the batch and keeps every acknowledged entry", async () => {
    // A minute behind real time, so the restart below (on the real clock) is not refused as a
    // clock running behind the last checkpoint.
    const clock = () => Date.now() - 120_000;
    const { log, db, entriesDb, leafKv } = await openStaged({ clock, recoveryMinMs: 5 });
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
    if (row.outcome === "hang") {
      const first = await Promise.race([Promise.all(faulted), sleep(50).then(() => "pending")]);
      expect(first).toBe("pending");
      expect(log.size).toBe(5);
    } else {
      expect(await Promise.all(faulted)).toEqual(Array(3).fill("STORAGE_FAILURE"));
      await waitForStatus(log, "open");
      expect(log.size).toBe(5);
      expect(await storedLeaves(leafKv)).toEqual([0, 1, 2, 3, 4]);
      await Promise.all([8, 9].map((i) => submit(payloadOf(i))));
    }

    // Kill the process: only what was durably applied survives.
    const restartedEntries = entriesDb.simulateRestart();
    const again = await Log.open({
      origin: ORIGIN,
      seed: SEED,
      kv: db.simulateRestart().namespace("log"),
      entries: restartedEntries.namespace("log"),
      checkpointIntervalMs: 0,
    });
    for (const { receipt, payload } of acked) {
      const entry = await again.entry(receipt.index);
      expect(bytesEqual(entry.leafHash, receipt.leafHash)).toBe(true);
      await checkReceipt(again, receipt, payload);
    }
    expect(await storedLeaves(restartedEntries.namespace("log"))).toEqual(
      Array.from({ length: again.size }, (_, i) => i),
    );
    // The faulted batch never landed: resubmitting its entries makes new ones.
    const resubmitted = await Promise.all(
      [5, 6, 7].map((i) => again.submit(payloadOf(i), keyOf(payloadOf(i)))),
    );
    expect(resubmitted.map((r) => r.duplicate)).toEqual([false, false, false]);
    await again.close();
  });
});
