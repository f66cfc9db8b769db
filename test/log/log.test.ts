/**
 * The log engine end to end over the memory driver: receipts verify offline, reads return what
 * was written, tiles and bundles are exactly C2SP's, dedup is strong, restarts resume exactly,
 * and the start-up guards refuse inconsistent storage.
 */
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import { CompactRange } from "../../src/core/compact.js";
import { encodeLeafFields, MAX_PAYLOAD_SIZE, parseUuid } from "../../src/core/entry.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import {
  buildHashTile,
  encodeEntryBundle,
  formatTilePath,
  tilesForSize,
} from "../../src/core/tiles.js";
import { formatTlogProof } from "../../src/core/tlog-proof.js";
import { verifyInclusion } from "../../src/core/verify.js";
import type { Receipt } from "../../src/log/receipt.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { codeOf, codeOfAsync } from "../helpers/errors.js";
import { checkConsistentHistory, checkReceipt, openMemoryLog, payloadOf } from "./helpers.js";

describe("log engine", () => {
  it("a new log publishes a signed empty checkpoint", async () => {
    const { log, published } = await openMemoryLog();
    expect(log.size).toBe(0);
    expect(published).toHaveLength(1);
    expect(log.checkpoint.note).toMatch(
      /^test\.example\/log\n0\n47DEQpj8HBSa\+\/TImW\+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— test\.example\/log /,
    );
    await log.close();
  });

  it("sequences concurrent submissions; every receipt verifies offline", async () => {
    const { log, published } = await openMemoryLog();
    const n = 700;
    const receipts = await Promise.all(
      Array.from({ length: n }, (_, i) => log.submit(payloadOf(i))),
    );
    expect(new Set(receipts.map((r) => r.index)).size).toBe(n);
    expect(log.size).toBe(n);
    for (const [i, r] of receipts.entries()) {
      expect(r.duplicate).toBe(false);
      await checkReceipt(log, r, payloadOf(i));
    }
    // Ids and timestamps never decrease in index order.
    const byIndex = [...receipts].sort((a, b) => a.index - b.index);
    for (let i = 1; i < byIndex.length; i++) {
      expect(byIndex[i]!.idText > byIndex[i - 1]!.idText).toBe(true);
      expect(byIndex[i]!.timestamp).toBeGreaterThanOrEqual(byIndex[i - 1]!.timestamp);
    }
    await checkConsistentHistory(log, published);
    await log.close();
  });

  it("writes receipts exactly as the core's tlog-proof formatter does", async () => {
    const { log } = await openMemoryLog();
    const receipts = await Promise.all([0, 1, 2, 3, 4, 5, 6].map((i) => log.submit(payloadOf(i))));
    for (const r of receipts) {
      const formatted = formatTlogProof({
        extra: encodeLeafFields({ id: r.id, timestamp: r.timestamp, leafHash: r.leafHash }),
        index: r.index,
        proof: await r.proof(),
        checkpoint: r.checkpoint,
      });
      expect(await r.tlogProof()).toBe(formatted);
    }
    await log.close();
  });

  it("appends in batches: submitMany answers in order, dedups (payload rule) within and across calls", async () => {
    const { log } = await openMemoryLog(undefined, { dedup: "payload" });
    const first = await log.submitMany([0, 1, 2, 1].map((i) => payloadOf(i)));
    expect(first.map((r) => r.index)).toEqual([0, 1, 2, 1]);
    expect(first.map((r) => r.duplicate)).toEqual([false, false, false, true]);
    const [again, fresh] = await Promise.all([
      log.submitMany([payloadOf(2)]),
      log.submitMany([payloadOf(3)]),
    ]);
    expect(again[0]).toMatchObject({ index: 2, duplicate: true });
    expect(fresh[0]).toMatchObject({ index: 3, duplicate: false });
    for (const [i, r] of first.entries()) await checkReceipt(log, r, payloadOf([0, 1, 2, 1][i]!));
    const err = await log.submitMany([payloadOf(9), new Uint8Array(70_000)]).catch((e) => e);
    expect(err.code).toBe("TOO_LARGE");
    expect(await log.submitMany([])).toEqual([]);
    await log.close();
  });

  it("reads entries by index, id and leaf hash, and ranges", async () => {
    const { log } = await openMemoryLog();
    const receipts = await Promise.all([0, 1, 2, 3, 4].map((i) => log.submit(payloadOf(i))));
    for (const [i, r] of receipts.entries()) {
      const byIndex = await log.entry(r.index);
      expect(new TextDecoder().decode(byIndex.payload)).toBe(`entry ${i}`);
      expect(byIndex.id).toBe(r.idText);
      expect(byIndex.timestamp).toBe(r.timestamp);
      expect(bytesEqual(byIndex.leafHash, r.leafHash)).toBe(true);
      expect((await log.entryById(parseUuid(r.idText))).index).toBe(r.index);
      expect((await log.entryByLeafHash(r.leafHash)).index).toBe(r.index);
    }
    expect((await log.entries(1, 3)).map((e) => e.index)).toEqual([1, 2, 3]);
    expect(await log.entries(4, 100)).toHaveLength(1);
    expect(await codeOfAsync(log.entry(5))).toBe("NOT_FOUND");
    expect(await codeOfAsync(log.entryByLeafHash(new Uint8Array(32)))).toBe("NOT_FOUND");
    expect(await codeOfAsync(log.inclusionProof(0, 6))).toBe("OUT_OF_RANGE");
    await log.close();
  });

  it("refuses oversized payloads with the limit in the message, and changes nothing", async () => {
    const { log } = await openMemoryLog();
    const err = await log.submit(new Uint8Array(70_000)).catch((e) => e);
    expect(err.code).toBe("TOO_LARGE");
    expect(err.message).toMatch(new RegExp(`${MAX_PAYLOAD_SIZE}`));
    expect(log.size).toBe(0);
    await log.close();
  });

  it("dedups by payload (its rule, kept across restarts) and by idempotency key, strongly", async () => {
    const { log, db } = await openMemoryLog(undefined, { dedup: "payload" });
    const a = await log.submit(payloadOf(1));
    const [b, c] = await Promise.all([log.submit(payloadOf(1)), log.submit(payloadOf(1))]);
    expect(b.index).toBe(a.index);
    expect(c.index).toBe(a.index);
    expect(b.duplicate && c.duplicate).toBe(true);
    const k = await log.submit(payloadOf(2), { idempotencyKey: "order-42" });
    const k2 = await log.submit(payloadOf(2), { idempotencyKey: "order-42" });
    expect(k2.index).toBe(k.index);
    expect(await codeOfAsync(log.submit(payloadOf(3), { idempotencyKey: "order-42" }))).toBe(
      "CONFLICT",
    );
    expect(log.size).toBe(2);
    await log.close();
    const { log: again } = await openMemoryLog(db.simulateRestart());
    expect(again.dedup).toBe("payload"); // stored with the log: no flag needed
    const d = await again.submit(payloadOf(1));
    expect(d.duplicate).toBe(true);
    expect(d.index).toBe(a.index);
    await checkReceipt(again, d, payloadOf(1));
    expect(await codeOfAsync(again.submit(payloadOf(9), { idempotencyKey: "order-42" }))).toBe(
      "CONFLICT",
    );
    expect(again.size).toBe(2);
    await again.close();
  });

  it("serves exactly the C2SP tiles and bundles, for every published size", async () => {
    const { log } = await openMemoryLog(undefined, { batchMaxEntries: 100 });
    const payloads: Uint8Array[] = [];
    const leaves: Uint8Array[] = [];
    const nodes = new Map<string, Uint8Array>();
    const range = CompactRange.empty();
    for (const target of [1, 2, 255, 256, 257, 600]) {
      const batch = [];
      for (let i = log.size; i < target; i++) {
        payloads.push(payloadOf(i));
        batch.push(log.submit(payloadOf(i)));
      }
      await Promise.all(batch);
      for (let i = leaves.length; i < target; i++) {
        const e = await log.entry(i);
        leaves.push(e.leaf);
        range.append(hashLeaf(e.leaf), (l, x, h) => nodes.set(`${l}/${x}`, h));
      }
      expect(log.size).toBe(target);
      expect(bytesEqual(log.checkpoint.checkpoint.rootHash, range.root())).toBe(true);
      for (const tile of tilesForSize(target)) {
        if (tile.level === "entries") {
          const want = encodeEntryBundle(
            leaves.slice(tile.index * 256, tile.index * 256 + tile.width),
          );
          expect(
            bytesEqual(await log.entryBundle(tile.index, tile.width), want),
            formatTilePath(tile),
          ).toBe(true);
        } else {
          const want = buildHashTile(tile, (h, x) => nodes.get(`${h}/${x}`)!);
          expect(
            bytesEqual(await log.hashTile(tile.level, tile.index, tile.width), want),
            formatTilePath(tile),
          ).toBe(true);
        }
      }
    }
    // Partial tiles of earlier checkpoints stay served; unpublished ones are NOT_FOUND.
    expect((await log.hashTile(0, 0, 1)).length).toBe(32);
    expect(await codeOfAsync(log.hashTile(0, 2, 89))).toBe("NOT_FOUND");
    expect(await codeOfAsync(log.entryBundle(2, 89))).toBe("NOT_FOUND");
    await log.close();
  });

  it("restarts exactly where it left off, and keeps serving old proofs", async () => {
    const { log, db, published } = await openMemoryLog();
    const first = await Promise.all(
      Array.from({ length: 300 }, (_, i) => log.submit(payloadOf(i))),
    );
    await log.close();
    const closing = published.at(-1)!;
    expect(closing.checkpoint.size).toBe(300);
    const { log: again, published: more } = await openMemoryLog(db.simulateRestart());
    expect(again.size).toBe(300);
    expect(again.checkpoint.note).toBe(closing.note);
    const second = await Promise.all(
      Array.from({ length: 300 }, (_, i) => again.submit(payloadOf(i, "second"))),
    );
    expect(Math.min(...second.map((r) => r.index))).toBe(300);
    expect(Math.min(...second.map((r) => r.timestamp))).toBeGreaterThanOrEqual(
      Math.max(...first.map((r) => r.timestamp)),
    );
    for (const r of first.slice(0, 20)) {
      const proof = await again.inclusionProof(r.index, 300);
      verifyInclusion(r.index, 300, r.leafHash, proof, closing.checkpoint.rootHash);
    }
    await checkConsistentHistory(again, [...published, ...more]);
    expect(await again.checkpointAt(300)).toBe(closing.note);
    await again.close();
  });

  it("close drains the queue, signs a final checkpoint, then refuses entries", async () => {
    const { log, published } = await openMemoryLog(undefined, { batchMaxAgeMs: 50 });
    const pending = Array.from({ length: 10 }, (_, i) => log.submit(payloadOf(i)));
    await log.close();
    const receipts = await Promise.all(pending);
    expect(receipts).toHaveLength(10);
    expect(published.at(-1)!.checkpoint.size).toBe(10);
    expect(await codeOfAsync(log.submit(payloadOf(99)))).toBe("UNAVAILABLE");
  });

  it("submitEach answers every entry's own outcome, in order, without rejecting", async () => {
    const { log } = await openMemoryLog(undefined, { dedup: "payload" });
    const old = await log.submit(payloadOf(1), { idempotencyKey: "k1" });
    const outcomes = await log.submitEach([
      { payload: payloadOf(2) },
      { payload: payloadOf(1) }, // a duplicate of an older entry
      { payload: payloadOf(3), idempotencyKey: "k1" }, // the key belongs to another payload
      { payload: new Uint8Array(70_000) }, // over the payload limit
      { payload: payloadOf(2) }, // the same payload twice in one call
      { payload: payloadOf(4), idempotencyKey: "k4" },
    ]);
    const codeOrIndex = outcomes.map((o) =>
      "error" in o ? (o.error as { code: string }).code : o.index,
    );
    expect(codeOrIndex).toEqual([1, old.index, "CONFLICT", "TOO_LARGE", 1, 2]);
    const receipts = outcomes.filter((o) => !("error" in o)) as Receipt[];
    expect(receipts.map((r) => r.duplicate)).toEqual([false, true, true, false]);
    const payloadAt = [payloadOf(1), payloadOf(2), payloadOf(4)];
    for (const r of receipts) await checkReceipt(log, r, payloadAt[r.index]!);
    expect(await log.submitEach([])).toEqual([]);
    expect(log.size).toBe(3);
    await log.close();
  });

  it("re-signs an idle log with a newer timestamp, never going back in time", async () => {
    let now = 1_800_000_000_000;
    const { log, published } = await openMemoryLog(undefined, {
      clock: () => now,
      checkpointIntervalMs: 20,
    });
    await log.submit(payloadOf(1));
    const before = log.checkpoint;
    now += 60_000;
    await new Promise((r) => setTimeout(r, 80));
    expect(log.checkpoint.time).toBe(before.time + 60);
    expect(log.checkpoint.checkpoint.size).toBe(1);
    now -= 3_600_000; // the clock steps back an hour
    await log.submit(payloadOf(2));
    expect(log.checkpoint.time).toBeGreaterThanOrEqual(before.time + 60);
    await checkConsistentHistory(log, published);
    await log.close();
  });

  it("applies back-pressure with a retry hint instead of growing without bound", async () => {
    const db = new MemoryDatabase();
    const { log } = await openMemoryLog(db, { maxQueueEntries: 5, batchMaxEntries: 2 });
    db.faults = { write: () => "hang" }; // storage stalls: nothing drains
    const outcomes = Array.from({ length: 20 }, (_, i) =>
      log.submit(payloadOf(i)).then(
        () => "stored",
        (e) => e,
      ),
    );
    await new Promise((r) => setTimeout(r, 20));
    // One batch (2 entries) is stuck in storage, the next (2) is prepared behind it; 1 waits,
    // and 4 more fill the queue.
    expect(log.queueLength).toBe(1);
    for (const i of [100, 101, 103, 104]) void log.submit(payloadOf(i)).catch(() => undefined);
    const late = await log.submit(payloadOf(102)).catch((e) => e);
    expect(late.code).toBe("OVERLOADED");
    expect(late.retryAfterMs).toBeGreaterThan(0);
    expect(late.message).toMatch(/try again/);
    expect(log.queueLength).toBe(5);
    const refused = await Promise.all(outcomes.slice(5));
    expect(refused.every((e) => (e as { code?: string }).code === "OVERLOADED")).toBe(true);
  });

  it("hosts several logs in one database without interference", async () => {
    const db = new MemoryDatabase();
    const { Log } = await import("../../src/log/log.js");
    const a = await Log.open({
      origin: "a.example/log",
      seed: new Uint8Array(32).fill(1),
      kv: db.namespace("a"),
      checkpointIntervalMs: 0,
    });
    const b = await Log.open({
      origin: "b.example/log",
      seed: new Uint8Array(32).fill(2),
      kv: db.namespace("b"),
      checkpointIntervalMs: 0,
    });
    await a.submit(payloadOf(1));
    await Promise.all([b.submit(payloadOf(1)), b.submit(payloadOf(2))]);
    expect([a.size, b.size]).toEqual([1, 2]);
    expect(codeOf(() => void 0)).toBe("no error");
    await a.close();
    await b.close();
  });
});
