/**
 * The dedup rule (src/log/dedup.ts) and the submitter in the leaf, in the log engine: under the
 * default "key" rule identical payloads are distinct entries and only an idempotency key makes a
 * duplicate (in flight and in storage alike); "payload" keeps the old behaviour; the rule is
 * stored with the log, a log from before the setting keeps payload dedup and its receipts; and
 * an entry's submitter is in its leaf, so a receipt proves it.
 */
import { describe, expect, it } from "vitest";
import { verifyReceipt } from "../../src/client/receipts.js";
import { decodeLeaf, decodeLeafFields, encodeLeafFields } from "../../src/core/entry.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { parseTlogProof } from "../../src/core/tlog-proof.js";
import type { Receipt } from "../../src/log/receipt.js";
import { base64 } from "../../src/platform/base64.js";
import { DEDUP_KEY } from "../../src/storage/kv-log-layout.js";
import type { MemoryDatabase } from "../../src/storage/memory.js";
import { codeOf, codeOfAsync } from "../helpers/errors.js";
import { checkReceipt, openMemoryLog, payloadOf } from "./helpers.js";

const login = new TextEncoder().encode('{"user":"bob","action":"login"}');

/** How many payload-index keys ("p" + 32 bytes) the log's namespace holds. */
async function payloadIndexKeys(db: MemoryDatabase): Promise<number> {
  const rows = await db
    .namespace("log")
    .range({ gte: Uint8Array.of(0x70), lt: Uint8Array.of(0x71) });
  return rows.length;
}

describe("dedup by idempotency key (the default for new logs)", () => {
  it("logs identical payloads without a key as distinct entries, and writes no payload index", async () => {
    const { log, db } = await openMemoryLog();
    expect(log.dedup).toBe("key");
    const first = await log.submit(login);
    const second = await log.submit(login);
    // Concurrently too: the in-flight dedup follows the same rule.
    const more = await Promise.all([log.submit(login), log.submit(login)]);
    const batch = await log.submitMany([login, login]);
    const each = await log.submitEach([{ payload: login }, { payload: login }]);
    const all = [first, second, ...more, ...batch, ...(each as Receipt[])];
    expect(all.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(all.every((r) => !r.duplicate)).toBe(true);
    expect(new Set(all.map((r) => r.idText)).size).toBe(8);
    for (const r of all) await checkReceipt(log, r, login);
    expect(await payloadIndexKeys(db)).toBe(0);
    await log.close();
  });

  it("answers the same key with the same payload as a duplicate: in flight, stored, restarted", async () => {
    const { log, db } = await openMemoryLog();
    const [a, b] = await Promise.all([
      log.submit(login, { idempotencyKey: "evt-1" }),
      log.submit(login, { idempotencyKey: "evt-1" }),
    ]);
    expect(b.index).toBe(a.index);
    expect([a.duplicate, b.duplicate]).toEqual([false, true]);
    const c = await log.submit(login, { idempotencyKey: "evt-1" });
    expect(c).toMatchObject({ index: a.index, duplicate: true });
    // The same bytes under another key, or none, are another event.
    const d = await log.submit(login, { idempotencyKey: "evt-2" });
    expect(d).toMatchObject({ index: 1, duplicate: false });
    const each = await log.submitEach([
      { payload: login, idempotencyKey: "evt-2" },
      { payload: login },
    ]);
    expect(each.map((o) => ("error" in o ? "error" : [o.index, o.duplicate]))).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(log.size).toBe(3);
    await log.close();
    const { log: again } = await openMemoryLog(db.simulateRestart());
    expect(again.dedup).toBe("key");
    const e = await again.submit(login, { idempotencyKey: "evt-1" });
    expect(e).toMatchObject({ index: 0, duplicate: true, idText: a.idText });
    await checkReceipt(again, e, login);
    expect(again.size).toBe(3);
    await again.close();
  });

  it("refuses the same key with another payload (CONFLICT): in flight, stored, restarted", async () => {
    const { log, db } = await openMemoryLog();
    const outcomes = await Promise.all([
      log.submit(payloadOf(1), { idempotencyKey: "k" }).then(
        (r) => r.index,
        (e) => e.code,
      ),
      log.submit(payloadOf(2), { idempotencyKey: "k" }).then(
        (r) => r.index,
        (e) => e.code,
      ),
    ]);
    expect(outcomes).toEqual([0, "CONFLICT"]);
    expect(await codeOfAsync(log.submit(payloadOf(3), { idempotencyKey: "k" }))).toBe("CONFLICT");
    const each = await log.submitEach([{ payload: payloadOf(4), idempotencyKey: "k" }]);
    expect((each[0] as { error?: { code: string } }).error?.code).toBe("CONFLICT");
    expect(log.size).toBe(1);
    await log.close();
    const { log: again } = await openMemoryLog(db.simulateRestart());
    expect(await codeOfAsync(again.submit(payloadOf(5), { idempotencyKey: "k" }))).toBe("CONFLICT");
    expect((await again.submit(payloadOf(1), { idempotencyKey: "k" })).duplicate).toBe(true);
    expect(again.size).toBe(1);
    await again.close();
  });
});

describe("dedup by payload (an explicit, stored setting)", () => {
  it("keeps the old behaviour: identical payloads are one entry, and the rule survives restarts", async () => {
    const { log, db } = await openMemoryLog(undefined, { dedup: "payload" });
    expect(log.dedup).toBe("payload");
    const a = await log.submit(login);
    const b = await log.submit(login);
    expect(b).toMatchObject({ index: a.index, duplicate: true });
    expect(await payloadIndexKeys(db)).toBe(1);
    await log.close();
    const { log: again } = await openMemoryLog(db.simulateRestart());
    expect(again.dedup).toBe("payload");
    expect(await again.submit(login)).toMatchObject({ index: 0, duplicate: true });
    await again.close();
  });

  it("refuses to turn a key log into a payload log; a payload log may become a key log", async () => {
    const { log, db } = await openMemoryLog();
    await log.submit(login);
    await log.close();
    const restarted = db.simulateRestart();
    const err = await openMemoryLog(restarted, { dedup: "payload" }).catch((e) => e);
    expect(err.code).toBe("STATE_MISMATCH");
    expect(err.message).toMatch(/cannot change to "payload"/);

    const { log: p, db: pdb } = await openMemoryLog(undefined, { dedup: "payload" });
    const old = await p.submit(login);
    await p.close();
    const changes: string[] = [];
    const { log: k, db: kdb } = await openMemoryLog(pdb.simulateRestart(), {
      dedup: "key",
      onDedupChange: (m) => changes.push(m),
    });
    expect(k.dedup).toBe("key");
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatch(/from "payload" to "key"/);
    expect(await k.submit(login)).toMatchObject({ index: 1, duplicate: false });
    await checkReceipt(k, old, login); // old receipts are untouched
    await k.close();
    const { log: still } = await openMemoryLog(kdb.simulateRestart());
    expect(still.dedup).toBe("key"); // the change was stored
    await still.close();
  });
});

describe("a log written before the dedup setting existed", () => {
  /** A log as the code before this change left it: payload dedup, v1 leaves, no "d" key. */
  async function legacyLog() {
    const { log, db } = await openMemoryLog(undefined, { dedup: "payload" });
    const receipts = await log.submitMany([login, payloadOf(1), payloadOf(2)]);
    const keyed = await log.submit(payloadOf(3), { idempotencyKey: "order-7" });
    const proofs = await Promise.all([...receipts, keyed].map((r) => r.tlogProof()));
    await log.close();
    await db.namespace("log").write([{ type: "del", key: DEDUP_KEY }]);
    expect(await db.namespace("log").get(DEDUP_KEY)).toBeUndefined();
    return { db: db.simulateRestart(), receipts: [...receipts, keyed], proofs };
  }

  it("keeps payload dedup, its entries, receipts and proofs, with no flag", async () => {
    const { db, receipts, proofs } = await legacyLog();
    const { log } = await openMemoryLog(db);
    expect(log.dedup).toBe("payload");
    expect(await db.namespace("log").get(DEDUP_KEY)).toBeUndefined(); // nothing rewritten
    expect(await log.submit(login)).toMatchObject({ index: 0, duplicate: true });
    expect(await log.submit(payloadOf(3), { idempotencyKey: "order-7" })).toMatchObject({
      index: 3,
      duplicate: true,
    });
    expect(await codeOfAsync(log.submit(payloadOf(9), { idempotencyKey: "order-7" }))).toBe(
      "CONFLICT",
    );
    const payloads = [login, payloadOf(1), payloadOf(2), payloadOf(3)];
    for (const [i, r] of receipts.entries()) {
      const entry = await log.entry(r.index);
      expect(entry.submitter).toBeUndefined(); // version-1 leaves
      expect(entry.leaf[1]).toBe(1);
      // The receipts issued before still verify, as saved, with the payload.
      const v = verifyReceipt(proofs[i]!, {
        logKey: log.signer.verifierKey,
        payload: payloads[i]!,
      });
      expect(v).toMatchObject({ index: r.index, submitter: undefined, payloadChecked: true });
      // And a receipt fetched now is byte for byte the one issued then (same checkpoint).
      const now = await log.receipt(r.index);
      expect(parseTlogProof(await now.tlogProof()).extra).toEqual(parseTlogProof(proofs[i]!).extra);
    }
    await log.close();
  });

  it("changes to key dedup when the operator asks, keeping its receipts", async () => {
    const { db, receipts, proofs } = await legacyLog();
    const { log } = await openMemoryLog(db, { dedup: "key" });
    expect(log.dedup).toBe("key");
    expect(await log.submit(login)).toMatchObject({ index: 4, duplicate: false });
    // Keys recorded under payload dedup still dedup.
    expect(await log.submit(payloadOf(3), { idempotencyKey: "order-7" })).toMatchObject({
      index: 3,
      duplicate: true,
    });
    expect(
      verifyReceipt(proofs[0]!, { logKey: log.signer.verifierKey, payload: login }).index,
    ).toBe(receipts[0]!.index);
    await log.close();
  });
});

describe("the submitter in the leaf", () => {
  it("commits each entry to its submitter (v2 leaf), readable and provable by receipt", async () => {
    const { log, db } = await openMemoryLog();
    const byA = await log.submit(login, { submitter: "0123456789abcdef" });
    const byB = await log.submit(login, { submitter: "fedcba9876543210" });
    const [each] = await log.submitEach([{ payload: login, submitter: "0123456789abcdef" }]);
    const none = await log.submit(login); // in-process, no token: a version-1 leaf
    expect([byA, byB, each as Receipt, none].map((r) => r.submitter)).toEqual([
      "0123456789abcdef",
      "fedcba9876543210",
      "0123456789abcdef",
      undefined,
    ]);
    const a = await log.entry(byA.index);
    expect(a.submitter).toBe("0123456789abcdef");
    expect(decodeLeaf(a.leaf)).toMatchObject({ submitter: "0123456789abcdef" });
    expect(a.leaf[0]).toBe(0x85); // [2, id, timestamp, submitter, payload]
    expect((await log.entry(none.index)).leaf[0]).toBe(0x84); // [1, id, timestamp, payload]
    for (const r of [byA, byB, none]) await checkReceipt(log, r, login);

    // The receipt's extra carries the submitter; verification with the payload proves it.
    const text = await byA.tlogProof();
    const extra = parseTlogProof(text).extra!;
    expect(decodeLeafFields(extra)).toMatchObject({ submitter: "0123456789abcdef" });
    const logKey = log.signer.verifierKey;
    expect(verifyReceipt(text, { logKey, payload: login })).toMatchObject({
      submitter: "0123456789abcdef",
      payloadChecked: true,
    });
    // Claiming another submitter (or none) in the extra: the rebuilt leaf no longer matches.
    const fields = decodeLeafFields(extra);
    for (const forged of [
      encodeLeafFields({ ...fields, submitter: "fedcba9876543210" }),
      encodeLeafFields({ id: fields.id, timestamp: fields.timestamp, leafHash: fields.leafHash! }),
    ]) {
      const tampered = text.replace(`extra ${base64(extra)}`, `extra ${base64(forged)}`);
      expect(tampered).not.toBe(text);
      expect(codeOf(() => verifyReceipt(tampered, { logKey, payload: login }))).toBe(
        "PROOF_MISMATCH",
      );
    }

    // A restart reads both versions back, and a duplicate's receipt names the original's submitter.
    await log.close();
    const { log: again } = await openMemoryLog(db.simulateRestart());
    const entries = await again.entries(0, 10);
    expect(entries.map((e) => e.submitter)).toEqual([
      "0123456789abcdef",
      "fedcba9876543210",
      "0123456789abcdef",
      undefined,
    ]);
    for (const e of entries) expect(hashLeaf(e.leaf)).toEqual(e.leafHash);
    const receipt = await again.receipt(byB.index);
    expect(receipt.submitter).toBe("fedcba9876543210");
    await checkReceipt(again, receipt, login);
    await again.close();
  });

  it("refuses a submitter that cannot be encoded, storing nothing", async () => {
    const { log } = await openMemoryLog();
    for (const bad of ["", "has space", "x".repeat(65), "é"]) {
      expect(await codeOfAsync(log.submit(login, { submitter: bad })), bad).toBe("MALFORMED");
    }
    expect(log.size).toBe(0);
    await log.close();
  });
});
