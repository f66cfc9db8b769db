/**
 * A table of storage failures run against the real sequencer over the memory driver's fault
 * hooks. Whatever fails, the log either makes progress or stops; it never acknowledges an entry
 * that is not durably stored; and every checkpoint it signs extends the one before (checked
 * across a restart on exactly what was durably written).
 */
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import type { Receipt } from "../../src/log/receipt.js";
import type { WriteFault } from "../../src/storage/memory.js";
import type { WriteOp } from "../../src/storage/types.js";
import { checkConsistentHistory, checkReceipt, openMemoryLog, payloadOf } from "./helpers.js";

type Step = "batch" | "checkpoint";
const isStep = (ops: readonly WriteOp[], step: Step) =>
  step === "batch"
    ? ops.some((o) => o.key.length === 1 && o.key[0] === 0x73) // the tree state key "s"
    : ops.length === 1 && ops[0]!.key[0] === 0x63; // a lone checkpoint "c"

interface Row {
  fault: WriteFault;
  step: Step;
  /** What the submitters of the failed batch see. */
  outcome: "STORAGE_FAILURE" | "hang" | "stored";
  /** Whether the failed batch's entries are in the log after a restart. */
  landed: boolean;
}

const table: Row[] = [
  { fault: "fail", step: "batch", outcome: "STORAGE_FAILURE", landed: false },
  { fault: "persist-then-fail", step: "batch", outcome: "STORAGE_FAILURE", landed: true },
  { fault: "lose", step: "batch", outcome: "STORAGE_FAILURE", landed: false },
  { fault: "hang", step: "batch", outcome: "hang", landed: false },
  { fault: "fail", step: "checkpoint", outcome: "STORAGE_FAILURE", landed: true },
  { fault: "persist-then-fail", step: "checkpoint", outcome: "STORAGE_FAILURE", landed: true },
  // The checkpoint write "succeeded": submitters are answered; on restart the stored tree gets
  // its checkpoint re-signed (same body, so the receipts' log signatures still verify).
  { fault: "lose", step: "checkpoint", outcome: "stored", landed: true },
  { fault: "hang", step: "checkpoint", outcome: "hang", landed: true },
];

describe.each(table)("storage fault $fault at the $step write", (row) => {
  it("keeps every acknowledged entry and a consistent history", async () => {
    const { log, db, published } = await openMemoryLog();
    const acked: { receipt: Receipt; payload: Uint8Array }[] = [];
    const submit = async (payload: Uint8Array) => {
      const receipt = await log.submit(payload);
      acked.push({ receipt, payload });
      return receipt;
    };
    await Promise.all([0, 1, 2, 3, 4].map((i) => submit(payloadOf(i))));

    let armed = true;
    db.faults = {
      write: (_ns, ops) => {
        if (armed && isStep(ops, row.step)) {
          armed = false;
          return row.fault;
        }
        return "ok";
      },
    };
    const failed = [5, 6, 7].map((i) =>
      submit(payloadOf(i)).then(
        () => "stored",
        (e) => e.code,
      ),
    );
    if (row.outcome === "stored") {
      expect(await Promise.all(failed)).toEqual(["stored", "stored", "stored"]);
      await Promise.all([8, 9].map((i) => submit(payloadOf(i))));
    } else if (row.outcome === "hang") {
      const first = await Promise.race([
        Promise.all(failed),
        new Promise((r) => setTimeout(() => r("pending"), 50)),
      ]);
      expect(first).toBe("pending");
    } else {
      expect(await Promise.all(failed)).toEqual([
        "STORAGE_FAILURE",
        "STORAGE_FAILURE",
        "STORAGE_FAILURE",
      ]);
      // The log recovered and makes progress.
      expect(log.status).toBe("open");
      await Promise.all([8, 9].map((i) => submit(payloadOf(i))));
    }

    // Kill the process: only what was durably applied survives.
    const restarted = db.simulateRestart();
    const { log: again, published: after } = await openMemoryLog(restarted);
    for (const { receipt, payload } of acked) {
      const entry = await again.entry(receipt.index);
      expect(bytesEqual(entry.leafHash, receipt.leafHash)).toBe(true);
      expect(entry.id).toBe(receipt.idText);
      await checkReceipt(again, receipt, payload);
    }
    // The failed batch is there, or not, as the table says: resubmitting tells.
    const resubmitted = await Promise.all([5, 6, 7].map((i) => again.submit(payloadOf(i))));
    expect(resubmitted.every((r) => r.duplicate)).toBe(row.landed);
    await checkConsistentHistory(again, [...published, ...after]);
    await again.close();
  });
});

describe("storage failures the log cannot recover from", () => {
  it("stops (UNAVAILABLE) when it cannot even reload its state, and restarts cleanly", async () => {
    const { log, db, published } = await openMemoryLog();
    await log.submit(payloadOf(0));
    // The batch's write fails, and so does every read the reload needs.
    db.faults = { write: () => "fail", read: (_ns, kind) => (kind === "getMany" ? "ok" : "fail") };
    expect((await log.submit(payloadOf(1)).catch((e) => e)).code).toBe("STORAGE_FAILURE");
    expect(log.status).toBe("failed");
    const err = await log.submit(payloadOf(2)).catch((e) => e);
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toMatch(/restart/);
    const { log: again, published: after } = await openMemoryLog(db.simulateRestart());
    expect(again.size).toBe(1);
    expect(log.status).toBe("failed");
    await again.submit(payloadOf(1));
    await checkConsistentHistory(again, [...published, ...after]);
    await again.close();
  });

  it("fails a batch whose dedup lookups cannot be read, storing nothing", async () => {
    const { log, db } = await openMemoryLog();
    db.faults = { read: (_ns, kind) => (kind === "getMany" ? "fail" : "ok") };
    const err = await log.submit(payloadOf(0)).catch((e) => e);
    expect(err.code).toBe("STORAGE_FAILURE");
    expect(err.message).toMatch(/not in the log/);
    db.faults = {};
    expect((await log.submit(payloadOf(0))).index).toBe(0);
    await log.close();
  });
});
