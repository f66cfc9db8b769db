/**
 * Issue 10, rollback protection a restored backup cannot erase: `vellum serve` runs, a copy of
 * its data directory is taken, more entries are acknowledged, the server stops, and the old copy
 * is put back (DATA/checkpoint with it, as old as the database). A marker outside the data
 * directory (`--state-mirror DIR`) or the witnesses of a witness policy (they cosigned sizes the
 * restored copy does not reach) must keep the restarted log from signing anything: it refuses to
 * start, or starts without accepting entries. Either way no size gets a second signed root and
 * every receipt the clients hold stays consistent with what the log serves.
 *
 * (With DATA/checkpoint gone, no mirror and no witness, nothing can tell; the README says so.)
 * No special tools: runs everywhere.
 */
import { describe, expect } from "vitest";
import { restoreBackup, type ScenarioReport } from "../../scripts/lib/fault-scenarios.js";
import { faultIt, summary } from "./helpers.js";

function expectNoRollback(r: ScenarioReport, says: RegExp): void {
  const why = summary(r);
  expect(r.badReceipts, why).toEqual([]);
  expect(r.acknowledged, why).toBeGreaterThan(0);
  expect(r.restart.ready, why).toBe(false);
  expect(r.ackedAfterRestart, why).toBe(0);
  expect(r.restart.output, why).toMatch(says);
  if (r.audit !== undefined) {
    // It serves reads (of what it has) but signs nothing new over the lost sizes.
    expect(r.audit.doubleSigned, why).toBe(0);
    expect(r.audit.forked, why).toBe(0);
    expect(r.audit.unverifiedServed, why).toBe(0);
  }
}

describe("an older copy of the data directory restored", () => {
  faultIt(
    "with --state-mirror outside the data directory: the log will not sign behind it",
    [],
    async (work) => {
      const r = await restoreBackup(work, {
        restore: "dir",
        stateMirror: true,
        before: 40,
        after: 80,
        restartMs: 8_000,
      });
      expectNoRollback(r, /mirror/i);
    },
    60_000,
  );

  faultIt(
    "with a witness policy: the witness cosigned more than the copy holds, so the log will not sign",
    [],
    async (work) => {
      const r = await restoreBackup(work, {
        restore: "dir",
        witness: true,
        before: 40,
        after: 80,
        restartMs: 8_000,
      });
      expectNoRollback(r, /witness/i);
    },
    60_000,
  );
});
