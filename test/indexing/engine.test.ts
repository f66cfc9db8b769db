/**
 * The index engine (src/indexing/engine.ts) over in-memory logs: its map and lists equal a
 * reference rebuilt from the definition (every key's list as a plain RFC 6962 tree, the map built
 * from scratch); a store dropped and rebuilt equals the live one; a crash between the store's
 * write and the index log's leaves the store ahead, and reopening commits that revision; a store
 * that disagrees with the index log is refused.
 */
import { describe, expect, it } from "vitest";
import { type IndexKey, indexKeysOfPayload } from "../../src/core/event-keys.js";
import { decodeRevision, mapKeyOf, mapValueOf } from "../../src/core/index-answer.js";
import { listLeaf } from "../../src/core/list-run.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { SparseMerkleMap } from "../../src/core/smt.js";
import { Indexer } from "../../src/indexing/engine.js";
import { Log } from "../../src/log/log.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { apiActivity, authentication } from "../audit/events.js";
import { openMemoryLog, SEED } from "../log/helpers.js";
import { mth } from "../server/helpers.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

function eventOf(i: number): Uint8Array {
  if (i % 7 === 6) return new TextEncoder().encode(`opaque entry ${i}`);
  if (i % 5 === 4) return enc(authentication({ user: { uid: `user-${i % 3}` } }));
  return enc(
    apiActivity({
      actor: { user: { uid: `actor-${i % 4}`, name: `Actor ${i % 4}` } },
      api: { operation: ["Read", "Update", "Delete"][i % 3] },
      resources: [{ uid: `r-${i % 11}` }, { uid: `r-${(i * 7) % 13}`, name: "shared" }],
      metadata: { product: { name: "t" }, version: "1.8.0", tenant_uid: `t-${i % 2}` },
    }),
  );
}

/** The map root the definition gives for the first `size` payloads. */
function referenceRoot(payloads: readonly Uint8Array[]): Uint8Array {
  const lists = new Map<string, { key: IndexKey; indices: number[] }>();
  payloads.forEach((p, i) => {
    for (const key of indexKeysOfPayload(p)) {
      const id = `${key.kind}\u0000${key.value}`;
      const l = lists.get(id) ?? { key, indices: [] };
      if (l.indices.at(-1) !== i) l.indices.push(i);
      lists.set(id, l);
    }
  });
  return new SparseMerkleMap(
    [...lists.values()].map((l) => ({
      key: mapKeyOf(l.key),
      value: mapValueOf(l.indices.length, mth(l.indices.map((i) => hashLeaf(listLeaf(i))))),
    })),
  ).root;
}

async function openIndexLog(db: MemoryDatabase, origin: string): Promise<Log> {
  return Log.open({
    origin: `${origin}/index`,
    seed: SEED,
    kv: db.namespace("index-log"),
    checkpointIntervalMs: 0,
    batchMaxAgeMs: 0,
  });
}

describe("the index engine", () => {
  it("commits revisions whose maps equal the reference, and rebuilds the same from scratch", async () => {
    const db = new MemoryDatabase();
    const { log } = await openMemoryLog(db, { batchMaxAgeMs: 0 });
    const indexLog = await openIndexLog(db, log.origin);
    const open = (ns: string) =>
      Indexer.open({
        source: log,
        indexLog,
        kv: db.namespace(ns),
        keysOf: indexKeysOfPayload,
        maxRevisionEntries: 16,
      });
    const indexer = await open("index");
    const payloads = Array.from({ length: 90 }, (_, i) => eventOf(i));
    for (let i = 0; i < payloads.length; i += 30) {
      await log.submitMany(payloads.slice(i, i + 30));
      await indexer.catchUp();
      const r = indexer.published!.revision;
      expect(r.logSize).toBe(i + 30);
      expect(hex(r.mapRoot)).toBe(hex(referenceRoot(payloads.slice(0, i + 30))));
      expect(hex(r.logRoot)).toBe(hex(await log.rootAt(i + 30)));
    }
    // Every revision in the index log, in order, each at most 16 entries after the last.
    const revisions = await Promise.all(
      Array.from({ length: indexLog.size }, async (_, k) =>
        decodeRevision((await indexLog.entry(k)).payload),
      ),
    );
    expect(revisions[0]!.logSize).toBe(0);
    for (let k = 1; k < revisions.length; k++) {
      const step = revisions[k]!.logSize - revisions[k - 1]!.logSize;
      expect(step).toBeGreaterThan(0);
      expect(step).toBeLessThanOrEqual(16);
      expect(hex(revisions[k]!.mapRoot)).toBe(
        hex(referenceRoot(payloads.slice(0, revisions[k]!.logSize))),
      );
    }
    // A new, empty store replays the log and makes the same map.
    const rebuilt = await open("index-rebuilt");
    expect(rebuilt.settled).toBe(true);
    expect(hex(rebuilt.mapRoot)).toBe(hex(indexer.mapRoot));
    const keys = indexKeysOfPayload(payloads[0]!);
    expect(await rebuilt.store.counts(keys)).toEqual(await indexer.store.counts(keys));
    for (const key of keys) {
      const [count] = await indexer.store.counts([key]);
      const q = { key, count: count!, from: 0, to: 90, order: "asc", limit: 1000 } as const;
      expect(await rebuilt.store.run(q)).toEqual(await indexer.store.run(q));
      // The list is the reference's: every index whose payload has the key, in order.
      const want = payloads.flatMap((p, i) =>
        indexKeysOfPayload(p).some((k) => k.kind === key.kind && k.value === key.value) ? [i] : [],
      );
      expect((await indexer.store.run(q)).items.map((i) => i.logIndex)).toEqual(want);
    }
  });

  it("commits the revision a crash left in the store only, when reopened", async () => {
    const db = new MemoryDatabase();
    const { log } = await openMemoryLog(db, { batchMaxAgeMs: 0 });
    let indexLog = await openIndexLog(db, log.origin);
    const indexer = await Indexer.open({
      source: log,
      indexLog,
      kv: db.namespace("index"),
      keysOf: indexKeysOfPayload,
    });
    await log.submitMany([eventOf(0), eventOf(1)]);
    await indexer.catchUp();
    const before = indexLog.size;
    // The index log stops taking entries: the next revision reaches the store only.
    await indexLog.close();
    await log.submitMany([eventOf(2), eventOf(3)]);
    await expect(indexer.catchUp()).rejects.toThrow(/closed/);
    expect(indexer.settled).toBe(false);
    indexLog = await openIndexLog(db, log.origin);
    expect(indexLog.size).toBe(before);
    const reopened = await Indexer.open({
      source: log,
      indexLog,
      kv: db.namespace("index"),
      keysOf: indexKeysOfPayload,
    });
    expect(reopened.settled).toBe(false);
    await reopened.catchUp();
    expect(reopened.settled).toBe(true);
    expect(indexLog.size).toBe(before + 1);
    expect(reopened.published!.revision.logSize).toBe(4);
    expect(hex(reopened.published!.revision.mapRoot)).toBe(
      hex(referenceRoot([0, 1, 2, 3].map(eventOf))),
    );
  });

  it("refuses a store whose map is not the index log's", async () => {
    const db = new MemoryDatabase();
    const { log } = await openMemoryLog(db, { batchMaxAgeMs: 0 });
    const indexLog = await openIndexLog(db, log.origin);
    const open = () =>
      Indexer.open({
        source: log,
        indexLog,
        kv: db.namespace("index"),
        keysOf: indexKeysOfPayload,
      });
    const indexer = await open();
    await log.submitMany([eventOf(0), eventOf(1), eventOf(2)]);
    await indexer.catchUp();
    // Tamper with the stored map root (the state record: size, then root).
    const kv = db.namespace("index");
    const state = (await kv.get(Uint8Array.of(0x73)))!;
    state[39]! ^= 1;
    await kv.write([{ type: "put", key: Uint8Array.of(0x73), value: state }]);
    await expect(open()).rejects.toMatchObject({ code: "STATE_MISMATCH" });
    await expect(open()).rejects.toThrow(/vellum index rebuild/);
  });
});
