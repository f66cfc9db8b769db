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

type Step = "batch" | "resign";
const isStep = (ops: readonly WriteOp[], step: Step) =>
  step === "batch"
    ? ops.some((o) => o.key.length === 1 && o.key[0] === 0x73) // the tree state key "s"
    : ops.length === 1 && ops[0]!.key[0] === 0x63; // a lone checkpoint "c": an idle re-sign

interface Row {
  fault: WriteFault;
  step: Step;
  /** What the submitters of the batch after the fault see. */
  outcome: "STORAGE_FAILURE" | "hang" | "stored";
  /** Whether that batch's entries are in the log after a restart. */
  landed: boolean;
}

// A batch's checkpoint is part of the batch's one atomic write: a fault there covers both. The
// only lone checkpoint writes are an idle log's re-signing (and the final one on close).
const table: Row[] = [
  { fault: "fail", step: "batch", outcome: "STORAGE_FAILURE", landed: false },
  { fault: "persist-then-fail", step: "batch", outcome: "STORAGE_FAILURE", landed: true },
  { fault: "lose", step: "batch", outcome: "STORAGE_FAILURE", landed: false },
  { fault: "hang", step: "batch", outcome: "hang", landed: false },
  // A failed re-sign reloads the log, which goes on: the next batch is stored.
  { fault: "fail", step: "resign", outcome: "stored", landed: true },
  { fault: "persist-then-fail", step: "resign", outcome: "stored", landed: true },
  // The re-signed checkpoint "was stored" but is not: on restart the stored one (same tree) is
  // used, or the tree's checkpoint is re-signed; either way the history stays consistent.
  { fault: "lose", step: "resign", outcome: "stored", landed: true },
  // A hung re-sign holds the sequencer: nothing after it is written.
  { fault: "hang", step: "resign", outcome: "hang", landed: false },
];

describe.each(table)("storage fault $fault at the $step write", (row) => {
  it("keeps every acknowledged entry and a consistent history", async () => {
    // The clock starts a minute behind real time, so the restart below (on the real clock)
    // is not refused as a clock running behind the last checkpoint.
    let now = Date.now() - 120_000;
    const { log, db, published } = await openMemoryLog(undefined, {
      clock: () => now,
      checkpointIntervalMs: row.step === "resign" ? 10 : 0,
    });
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
    if (row.step === "resign") {
      now += 60_000; // idle for a minute: the timer re-signs, and that write meets the fault
      for (let waited = 0; armed && waited < 2000; waited += 5) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(armed).toBe(false);
      await new Promise((r) => setTimeout(r, 5)); // let a failed re-sign reload the tree
    }
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
