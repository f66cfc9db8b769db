/**
 * Start-up guards: the log refuses to start, saying why, when its storage, its signed
 * checkpoints, its key, its clock or its remembered last checkpoint disagree. It never repairs.
 */
import { describe, expect, it } from "vitest";
import { CheckpointSigner } from "../../src/log/signer.js";
import { checkpointKey, encodeIndex } from "../../src/storage/kv-log-layout.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { ORIGIN, openMemoryLog, payloadOf, SEED } from "./helpers.js";

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("the log started");
}

async function logWith(entries: number) {
  const opened = await openMemoryLog();
  await Promise.all(Array.from({ length: entries }, (_, i) => opened.log.submit(payloadOf(i))));
  return opened;
}

describe("start-up guards", () => {
  it("refuses another key on the same storage", async () => {
    const { log, db } = await logWith(3);
    await log.close();
    const err = await refusal(
      openMemoryLog(db.simulateRestart(), { seed: new Uint8Array(32).fill(7) }),
    );
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/not signed by this key/);
  });

  it("refuses another origin on the same storage", async () => {
    const { log, db } = await logWith(1);
    await log.close();
    const err = await refusal(openMemoryLog(db.simulateRestart(), { origin: "other.example/log" }));
    expect(err.code).toBe("STATE_MISMATCH");
  });

  it("refuses storage rolled back under a newer published checkpoint (old backup)", async () => {
    const { log, db } = await logWith(5);
    const backup = db.snapshot();
    await Promise.all([5, 6, 7].map((i) => log.submit(payloadOf(i))));
    const newest = log.checkpoint.note;
    await log.close();
    const restored = MemoryDatabase.fromSnapshot(backup);
    const err = await refusal(openMemoryLog(restored, { lastPublished: newest }));
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/size 8 but storage holds only 5 entries/);
    // The same storage with the matching remembered checkpoint starts fine.
    const ok = await openMemoryLog(MemoryDatabase.fromSnapshot(backup), {
      lastPublished: (await openMemoryLog(MemoryDatabase.fromSnapshot(backup))).log.checkpoint.note,
    });
    expect(ok.log.size).toBe(5);
  });

  it("refuses an empty storage when checkpoints were published before", async () => {
    const { log } = await logWith(2);
    const err = await refusal(
      openMemoryLog(new MemoryDatabase(), { lastPublished: log.checkpoint.note }),
    );
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/data is missing/);
  });

  it("refuses to start while the clock is behind the last checkpoint", async () => {
    const now = Date.now();
    const { log, db } = await openMemoryLog(undefined, { clock: () => now });
    await log.submit(payloadOf(1));
    await log.close();
    const err = await refusal(
      openMemoryLog(db.simulateRestart(), { clock: () => now - 3_600_000 }),
    );
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/clock .* behind/);
  });

  it("with allowClockBehind starts anyway and issues nothing below what it issued before", async () => {
    const ahead = Date.UTC(2031, 0, 1, 12, 0, 0, 500); // the clock once ran years ahead
    const { log, db } = await openMemoryLog(undefined, { clock: () => ahead });
    const before = await log.submitMany([payloadOf(1), payloadOf(2)]);
    const lastTime = log.checkpoint.time;
    expect(lastTime).toBe(Math.floor(ahead / 1000));
    await log.close();
    let now = ahead - 365 * 86_400_000; // corrected: a year behind what the log issued
    const { log: reopened } = await openMemoryLog(db.simulateRestart(), {
      clock: () => now,
      allowClockBehind: true,
    });
    const after = await reopened.submitMany([payloadOf(3), payloadOf(4), payloadOf(5)]);
    const all = [...before, ...after];
    for (let i = 1; i < all.length; i++) {
      expect(all[i]!.timestamp).toBeGreaterThanOrEqual(all[i - 1]!.timestamp);
      expect(Buffer.compare(all[i]!.id, all[i - 1]!.id)).toBe(1); // UUIDv7 order = index order
    }
    expect(after[0]!.timestamp).toBe(before[1]!.timestamp); // held at the last one, not `now`
    expect(reopened.checkpoint.time).toBe(lastTime);
    // Once the clock has caught up, time moves on from it again.
    now = ahead + 60_000;
    const [caughtUp] = await reopened.submitMany([payloadOf(6)]);
    expect(caughtUp!.timestamp).toBe(now);
    expect(reopened.checkpoint.time).toBe(Math.floor(now / 1000));
    await reopened.close();
  });

  it("refuses a signed checkpoint ahead of the stored tree (lost writes)", async () => {
    const { log, db } = await logWith(4);
    await log.close();
    const signer = new CheckpointSigner(ORIGIN, SEED);
    const ahead = signer.sign(9, new Uint8Array(32).fill(1), Math.floor(Date.now() / 1000));
    await db
      .namespace("log")
      .write([{ type: "put", key: checkpointKey(9), value: new TextEncoder().encode(ahead.note) }]);
    const err = await refusal(openMemoryLog(db.simulateRestart()));
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/size 9 but storage holds only 4/);
  });

  it("refuses a signed checkpoint whose root the stored tree does not have", async () => {
    const { log, db } = await logWith(4);
    await log.close();
    const forged = new CheckpointSigner(ORIGIN, SEED).sign(
      4,
      new Uint8Array(32).fill(9),
      Math.floor(Date.now() / 1000) + 1,
    );
    await db
      .namespace("log")
      .write([
        { type: "put", key: checkpointKey(4), value: new TextEncoder().encode(forged.note) },
      ]);
    const err = await refusal(openMemoryLog(db.simulateRestart()));
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/different root/);
  });

  it("refuses storage with log data but no tree state", async () => {
    const db = new MemoryDatabase();
    await db
      .namespace("log")
      .write([
        { type: "put", key: Uint8Array.of(0x65, 0, 0, 0, 0, 0, 0, 0, 0), value: encodeIndex(0) },
      ]);
    const err = await refusal(openMemoryLog(db));
    expect(err.code).toBe("STATE_MISMATCH");
  });
});
