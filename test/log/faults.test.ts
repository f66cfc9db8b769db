/**
 * A table of storage failures run against the real sequencer over the memory driver's fault
 * hooks. Whatever fails, the log stops acknowledging (fail-stop) until its store is recovered
 * and its tree reloaded, then makes progress; it never acknowledges an entry that is not durably
 * stored; and every checkpoint it signs extends the one before (checked across a restart on
 * exactly what was durably written).
 */
import { describe, expect, it } from "vitest";
import { bytesEqual } from "../../src/core/bytes.js";
import type { WriteFault } from "../../src/storage/memory.js";
import type { WriteOp } from "../../src/storage/types.js";
import {
  checkConsistentHistory,
  checkReceipt,
  keyedSubmitter,
  keyOf,
  openMemoryLog,
  payloadOf,
  waitForStatus,
} from "./helpers.js";

type Step = "batch" | "resign";
const isStep = (ops: readonly WriteOp[], step: Step) =>
  step === "batch"
    ? ops.some((o) => o.key.length === 1 && o.key[0] === 0x73) // the tree state key "s"
    : ops.length === 1 && ops[0]!.key[0] === 0x63; // a lone checkpoint "c": an idle re-sign

interface Row {
  fault: WriteFault;
  step: Step;
  /** What the submitters of the batch after the fault see (once the log recovered, if it did). */
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
  // A failed re-sign stops the log until it recovered; then the next batch is stored.
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
    const failures: string[] = [];
    const { log, db, published } = await openMemoryLog(undefined, {
      clock: () => now,
      checkpointIntervalMs: row.step === "resign" ? 10 : 0,
      recoveryMinMs: 20,
      onFailure: (e, event) => failures.push(`${event.kind} ${e.code}`),
    });
    const { acked, submit } = keyedSubmitter(log);
    await Promise.all([0, 1, 2, 3, 4].map((i) => submit(payloadOf(i))));

    let armed = true;
    // Recovery waits for the test to let it go, so what the log does meanwhile is seen.
    let letRecover!: () => void;
    const recovered = new Promise<void>((r) => (letRecover = r));
    db.faults = {
      write: (_ns, ops) => {
        if (armed && isStep(ops, row.step)) {
          armed = false;
          return row.fault;
        }
        return "ok";
      },
      recover: () => recovered,
    };
    if (row.step === "resign") {
      now += 60_000; // idle for a minute: the timer re-signs, and that write meets the fault
      for (let waited = 0; armed && waited < 2000; waited += 5) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(armed).toBe(false);
      await new Promise((r) => setTimeout(r, 5));
      if (row.fault !== "hang") {
        // Fail-stop: nothing is acknowledged until the store is recovered and the tree reloaded.
        if (row.fault !== "lose") {
          expect(log.status).toBe("failed");
          expect((await log.submit(payloadOf(99)).catch((e) => e)).code).toBe("STORAGE_FAILURE");
          expect(failures).toEqual(["failed STORAGE_FAILURE"]);
        }
        letRecover();
        await waitForStatus(log, "open");
      }
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
      // Fail-stop: refused while failed, with the failure named; then the log recovers by itself.
      expect(log.status).toBe("failed");
      const refused = await log.submit(payloadOf(98)).catch((e) => e);
      expect(refused.code).toBe("STORAGE_FAILURE");
      expect(refused.message).toMatch(/stopped acknowledging/);
      expect(failures).toEqual(["failed STORAGE_FAILURE"]);
      letRecover();
      await waitForStatus(log, "open");
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
    const resubmitted = await Promise.all(
      [5, 6, 7].map((i) => again.submit(payloadOf(i), keyOf(payloadOf(i)))),
    );
    expect(resubmitted.every((r) => r.duplicate)).toBe(row.landed);
    await checkConsistentHistory(again, [...published, ...after]);
    await again.close();
  });
});

describe("storage failures that outlast a retry", () => {
  it("stays failed while the store cannot be read, recovers once it can, and restarts cleanly", async () => {
    const failures: string[] = [];
    const { log, db, published } = await openMemoryLog(undefined, {
      recoveryMinMs: 5,
      recoveryMaxMs: 20,
      onFailure: (e, event) => failures.push(`${event.kind} ${e.code}`),
    });
    await log.submit(payloadOf(0));
    // The batch's write fails, and so does every read the reload needs.
    db.faults = { write: () => "fail", read: (_ns, kind) => (kind === "getMany" ? "ok" : "fail") };
    expect((await log.submit(payloadOf(1)).catch((e) => e)).code).toBe("STORAGE_FAILURE");
    expect(log.status).toBe("failed");
    for (let waited = 0; failures.length < 4 && waited < 2000; waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
    // Each failed attempt is reported; none is final (a read error may clear).
    expect(failures.slice(0, 3)).toEqual([
      "failed STORAGE_FAILURE",
      "retry STORAGE_FAILURE",
      "retry STORAGE_FAILURE",
    ]);
    const err = await log.submit(payloadOf(2)).catch((e) => e);
    expect(err.code).toBe("STORAGE_FAILURE");
    expect(err.message).toMatch(/recovering/);
    db.faults = {};
    await waitForStatus(log, "open");
    expect((await log.submit(payloadOf(2))).index).toBe(1);
    await log.close();
    const { log: again, published: after } = await openMemoryLog(db.simulateRestart());
    expect(again.size).toBe(2);
    await checkConsistentHistory(again, [...published, ...after]);
    await again.close();
  });

  it("stops for good (UNAVAILABLE) when storage no longer holds what the log released", async () => {
    const failures: string[] = [];
    const { log, db } = await openMemoryLog(undefined, {
      recoveryMinMs: 100,
      onFailure: (e, event) => failures.push(`${event.kind} ${e.code}`),
    });
    const before = db.snapshot();
    await log.submitMany([payloadOf(0), payloadOf(1)]);
    // The next write fails; before the log retries, the store "comes back" holding an older
    // state (a disk that lost acknowledged writes): the reload must refuse it, never re-sign.
    db.faults = { write: () => "fail" };
    expect((await log.submit(payloadOf(2)).catch((e) => e)).code).toBe("STORAGE_FAILURE");
    db.faults = {};
    const ns = db.namespace("log");
    await ns.recover();
    const lost = db
      .snapshot()
      .entries.filter(([k]) => !before.entries.some(([o]) => bytesEqual(k, o)));
    await ns.write(
      lost.map(([key]) => ({ type: "del" as const, key: key.subarray("!log!".length) })),
    );
    for (
      let waited = 0;
      !failures.some((f) => f.startsWith("final")) && waited < 2000;
      waited += 5
    ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(failures).toContain("final STATE_MISMATCH");
    expect(log.status).toBe("failed");
    const err = await log.submit(payloadOf(3)).catch((e) => e);
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toMatch(/operator/);
  });

  it("fails a batch whose dedup lookups cannot be read, storing nothing", async () => {
    const { log, db } = await openMemoryLog();
    db.faults = { read: (_ns, kind) => (kind === "getMany" ? "fail" : "ok") };
    // Keyed: under key dedup only keys are looked up (an unkeyed entry needs no read).
    const err = await log.submit(payloadOf(0), { idempotencyKey: "k0" }).catch((e) => e);
    expect(err.code).toBe("STORAGE_FAILURE");
    expect(err.message).toMatch(/not in the log/);
    db.faults = {};
    expect((await log.submit(payloadOf(0), { idempotencyKey: "k0" })).index).toBe(0);
    await log.close();
  });
});
