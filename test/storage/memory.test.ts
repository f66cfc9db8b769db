/**
 * MemoryDatabase: the shared storage contract, then its crash model and fault hooks — each fault
 * kind does exactly what src/storage/memory.ts says, and a restart shows exactly the durable data.
 */
import { describe, expect, it } from "vitest";
import { isVellumError } from "../../src/core/errors.js";
import { MemoryDatabase, type ReadKind, type WriteFault } from "../../src/storage/memory.js";
import type { WriteOp } from "../../src/storage/types.js";
import { codeOfAsync } from "../helpers/errors.js";
import { b, codeOfCall, del, put, runKeyValueContract } from "./contract.js";

runKeyValueContract("MemoryDatabase", async () => {
  const db = new MemoryDatabase();
  return { db, cleanup: () => db.close() };
});

const ALL = { gte: b(), lt: b(0xff, 0xff) };

/** Whether `p` is still pending after the event loop has had a few turns. */
async function isPending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setTimeout(r, 20));
  return !settled;
}

/** A database whose n-th write (1-based) gets `fault`; every other write is "ok". */
function faultyAt(n: number, fault: WriteFault): MemoryDatabase {
  return new MemoryDatabase({ faults: { write: (_ns, _ops, seq) => (seq === n ? fault : "ok") } });
}

describe("MemoryDatabase write faults", () => {
  it('"fail" rejects with STORAGE_FAILURE and applies nothing, before or after a restart', async () => {
    const db = faultyAt(2, "fail");
    const kv = db.namespace("log");
    await kv.write([put(b(1), b(1))]);
    expect(await codeOfAsync(kv.write([put(b(2), b(2)), del(b(1))]))).toBe("STORAGE_FAILURE");
    expect(await kv.range(ALL)).toEqual([[b(1), b(1)]]);
    await kv.recover(); // fail-stop: writable again only after recovery
    await kv.write([put(b(3), b(3))]);
    const after = db.simulateRestart().namespace("log");
    expect(await after.range(ALL)).toEqual([
      [b(1), b(1)],
      [b(3), b(3)],
    ]);
    expect(db.counters).toMatchObject({ writes: 3, writesApplied: 2, writesFailed: 1 });
  });

  it('"persist-then-fail" rejects with STORAGE_FAILURE yet the whole batch is durable', async () => {
    const db = faultyAt(1, "persist-then-fail");
    const kv = db.namespace("log");
    expect(await codeOfAsync(kv.write([put(b(1), b(1)), put(b(2), b(2))]))).toBe("STORAGE_FAILURE");
    expect(await kv.getMany([b(1), b(2)])).toEqual([b(1), b(2)]);
    const after = db.simulateRestart().namespace("log");
    expect(await after.getMany([b(1), b(2)])).toEqual([b(1), b(2)]);
    expect(db.counters).toMatchObject({
      writes: 1,
      writesApplied: 1,
      opsWritten: 2,
      writesFailed: 1,
    });
  });

  it('"lose" resolves but applies nothing, and a restart shows it gone', async () => {
    const db = faultyAt(2, "lose");
    const kv = db.namespace("log");
    await kv.write([put(b(1), b(1))]);
    await expect(kv.write([put(b(2), b(2)), del(b(1))])).resolves.toBeUndefined();
    expect(await kv.range(ALL)).toEqual([[b(1), b(1)]]);
    const restarted = db.simulateRestart();
    expect(await restarted.namespace("log").range(ALL)).toEqual([[b(1), b(1)]]);
    expect(db.counters).toMatchObject({ writes: 2, writesApplied: 1, writesLost: 1 });
  });

  it('"hang" never settles, applies nothing, does not block close(), and a restart shows only the durable data', async () => {
    const db = faultyAt(3, "hang");
    const kv = db.namespace("log");
    await kv.write([put(b(1), b(1))]);
    await kv.write([put(b(2), b(2))]);
    const hung = kv.write([put(b(3), b(3)), del(b(1))]);
    expect(await isPending(hung)).toBe(true);
    expect(await kv.range(ALL)).toEqual([
      [b(1), b(1)],
      [b(2), b(2)],
    ]);
    const restarted = db.simulateRestart();
    expect(await isPending(hung)).toBe(true);
    expect(await restarted.namespace("log").range(ALL)).toEqual([
      [b(1), b(1)],
      [b(2), b(2)],
    ]);
    expect(db.counters).toMatchObject({ writes: 3, writesApplied: 2, writesHung: 1 });
    await db.close(); // resolves although a write hangs
  });

  it("a hung write does not block close() on a live instance either", async () => {
    const db = faultyAt(1, "hang");
    const kv = db.namespace("log");
    const hung = kv.write([put(b(1), b(1))]);
    await db.close();
    await kv.close();
    expect(await isPending(hung)).toBe(true);
  });

  it("a write held by an async hook applies only when the hook answers, and close() waits for it", async () => {
    let release!: (f: WriteFault) => void;
    const gate = new Promise<WriteFault>((r) => {
      release = r;
    });
    const db = new MemoryDatabase({ faults: { write: () => gate } });
    const kv = db.namespace("log");
    const w = kv.write([put(b(1), b(1))]);
    const closed = db.close();
    expect(await isPending(closed)).toBe(true);
    expect(db.snapshot().entries).toEqual([]);
    release("ok");
    await w;
    await closed;
    expect(db.snapshot().entries).toHaveLength(1);
  });

  it("a write held by an async hook across a crash never applies and never settles", async () => {
    let release!: (f: WriteFault) => void;
    const db = new MemoryDatabase({
      faults: { write: () => new Promise<WriteFault>((r) => (release = r)) },
    });
    const w = db.namespace("log").write([put(b(1), b(1))]);
    const restarted = db.simulateRestart();
    release("ok");
    expect(await isPending(w)).toBe(true);
    expect(db.snapshot().entries).toEqual([]);
    expect(await restarted.namespace("log").get(b(1))).toBeUndefined();
    expect(db.counters.writesHung).toBe(1);
  });

  it("a hook that rejects or throws fails the write with STORAGE_FAILURE and applies nothing", async () => {
    const db = new MemoryDatabase({
      faults: { write: async () => Promise.reject(new Error("x")) },
    });
    const kv = db.namespace("log");
    expect(await codeOfAsync(kv.write([put(b(1), b(1))]))).toBe("STORAGE_FAILURE");
    await kv.recover();
    db.faults = {
      write: () => {
        throw new Error("y");
      },
    };
    expect(await codeOfAsync(kv.write([put(b(1), b(1))]))).toBe("STORAGE_FAILURE");
    db.faults = {};
    expect(await kv.get(b(1))).toBeUndefined();
    expect(db.counters).toMatchObject({ writes: 2, writesFailed: 2, writesApplied: 0 });
  });

  it("an unknown verdict is INTERNAL and applies nothing", async () => {
    const db = new MemoryDatabase({ faults: { write: () => "maybe" as WriteFault } });
    const kv = db.namespace("log");
    expect(await codeOfAsync(kv.write([put(b(1), b(1))]))).toBe("INTERNAL");
    db.faults = {};
    expect(await kv.get(b(1))).toBeUndefined();
  });

  it("the hook sees the namespace, the namespace's own keys and sequence numbers in call order", async () => {
    const seen: [string, WriteOp[], number][] = [];
    const db = new MemoryDatabase({
      faults: {
        write: (ns, ops, seq) => {
          seen.push([ns, [...ops], seq]);
          return "ok";
        },
      },
    });
    await db.namespace("a").write([put(b(1), b(2))]);
    await Promise.all([db.namespace("b").write([del(b(3))]), db.namespace("a").write([])]);
    expect(seen).toEqual([
      ["a", [put(b(1), b(2))], 1],
      ["b", [del(b(3))], 2],
      ["a", [], 3],
    ]);
  });

  it("the hook cannot change what is written by mutating the ops it is shown", async () => {
    const db = new MemoryDatabase({
      faults: {
        write: (_ns, ops) => {
          const op = ops[0]!;
          if (op.type === "put") op.value.fill(0);
          op.key.fill(9);
          return "ok";
        },
      },
    });
    await db.namespace("log").write([put(b(1), b(1))]);
    expect(await db.namespace("log").get(b(1))).toEqual(b(1));
  });

  it("faults can be changed mid-test", async () => {
    const db = new MemoryDatabase();
    const kv = db.namespace("log");
    db.faults = { write: () => "fail" };
    expect(await codeOfAsync(kv.write([put(b(1), b(1))]))).toBe("STORAGE_FAILURE");
    db.faults = {};
    await kv.recover();
    await kv.write([put(b(1), b(1))]);
    expect(await kv.get(b(1))).toEqual(b(1));
  });

  it("fail-stop: after a failed write every namespace refuses writes until recover(); reads go on", async () => {
    const db = faultyAt(2, "persist-then-fail");
    const [a, other] = [db.namespace("a"), db.namespace("b")];
    await a.write([put(b(1), b(1))]);
    expect(await codeOfAsync(a.write([put(b(2), b(2))]))).toBe("STORAGE_FAILURE");
    for (const kv of [a, other]) {
      const e = await kv.write([put(b(3), b(3))]).catch((err: unknown) => err);
      expect(isVellumError(e, "STORAGE_FAILURE")).toBe(true);
      expect((e as Error).message).toMatch(/stopped after a failed write/);
    }
    expect(await a.getMany([b(1), b(2), b(3)])).toEqual([b(1), b(2), undefined]);
    await other.recover(); // one recovery serves every namespace
    await a.write([put(b(3), b(3))]);
    expect(await a.get(b(3))).toEqual(b(3));
    await a.recover(); // nothing failed: harmless
    expect(db.counters).toMatchObject({ writes: 3, writesFailed: 1, writesApplied: 3 });
  });
});

describe("MemoryDatabase read faults", () => {
  it("fails exactly the reads the hook names, with STORAGE_FAILURE", async () => {
    const kinds: string[] = [];
    const failing = new Set<ReadKind>(["getMany"]);
    const db = new MemoryDatabase({
      faults: {
        read: (ns, kind) => {
          kinds.push(`${ns}:${kind}`);
          return failing.has(kind) ? "fail" : "ok";
        },
      },
    });
    const kv = db.namespace("log");
    await kv.write([put(b(1), b(1))]);
    expect(await kv.get(b(1))).toEqual(b(1));
    expect(await codeOfAsync(kv.getMany([b(1)]))).toBe("STORAGE_FAILURE");
    expect(await kv.range(ALL)).toHaveLength(1);
    failing.clear();
    failing.add("get");
    failing.add("range");
    expect(await codeOfAsync(kv.get(b(1)))).toBe("STORAGE_FAILURE");
    expect(await codeOfAsync(kv.range(ALL))).toBe("STORAGE_FAILURE");
    expect(await kv.getMany([b(1)])).toEqual([b(1)]);
    expect(kinds).toEqual([
      "log:get",
      "log:getMany",
      "log:range",
      "log:get",
      "log:range",
      "log:getMany",
    ]);
    expect(db.counters.reads).toBe(6);
  });
});

describe("MemoryDatabase crash and restart", () => {
  it("a crashed instance refuses everything with UNAVAILABLE but can still be snapshotted", async () => {
    const db = new MemoryDatabase();
    const kv = db.namespace("log");
    await kv.write([put(b(1), b(1))]);
    db.crash();
    expect(db.crashed).toBe(true);
    expect(await codeOfAsync(kv.get(b(1)))).toBe("UNAVAILABLE");
    expect(await codeOfAsync(kv.write([put(b(2), b(2))]))).toBe("UNAVAILABLE");
    expect(await codeOfCall(() => db.namespace("log"))).toBe("UNAVAILABLE");
    expect(db.snapshot().entries).toHaveLength(1);
    await db.close();
  });

  it("snapshot() is a copy, and fromSnapshot() restores every namespace", async () => {
    const db = new MemoryDatabase();
    await db.namespace("a").write([put(b(1), b(0xa))]);
    await db.namespace("ab").write([put(b(1), b(0xb))]);
    const snap = db.snapshot();
    await db.namespace("a").write([put(b(2), b(2)), del(b(1))]);
    // Full keys carry the "!name!" prefix, in bytewise order.
    expect(snap.entries.map(([k]) => new TextDecoder().decode(k))).toEqual([
      "!a!\u0001",
      "!ab!\u0001",
    ]);
    snap.entries[0]![1].fill(0); // mutating the snapshot does not touch the database
    expect(await db.namespace("a").range(ALL)).toEqual([[b(2), b(2)]]);
    const restored = MemoryDatabase.fromSnapshot(db.snapshot());
    expect(await restored.namespace("a").range(ALL)).toEqual([[b(2), b(2)]]);
    expect(await restored.namespace("ab").range(ALL)).toEqual([[b(1), b(0xb)]]);
    expect(restored.size).toBe(2);
  });

  it("a restart keeps applied data, starts fresh counters and takes new faults", async () => {
    const db = new MemoryDatabase();
    await db.namespace("log").write([put(b(1), b(1))]);
    const seqs: number[] = [];
    const after = db.simulateRestart({
      faults: {
        write: (_ns, _ops, seq) => {
          seqs.push(seq);
          return "ok";
        },
      },
    });
    expect(after.counters.writes).toBe(0);
    await after.namespace("log").write([put(b(2), b(2))]);
    expect(seqs).toEqual([1]);
    expect(await after.namespace("log").range(ALL)).toHaveLength(2);
    expect(after.counters).toMatchObject({ writes: 1, writesApplied: 1, opsWritten: 1 });
  });
});
