/**
 * Issue 10, "never serve what does not verify", with real damage: one byte flipped on disk inside
 * an acknowledged entry's payload, in a LevelDB table (`.ldb`) or in the write-ahead log
 * (`.log`), of a stopped `vellum serve`. The restarted server either refuses to start, naming the
 * failure (STORAGE_FAILURE / CORRUPTION), or serves: then the damaged entry is a 500
 * INTEGRITY_FAILURE and never a 200 with other bytes, every page, bundle and entry it serves with
 * 200 matches its signed tree, and no size gets a second root. `vellum fsck --data DIR` passes
 * the log before the flip and fails it after.
 *
 * No special tools: runs everywhere.
 */
import { describe, expect } from "vitest";
import { byteFlip } from "../../scripts/lib/fault-scenarios.js";
import { runVellum } from "../helpers/cli.js";
import { faultIt, summary } from "./helpers.js";

type Flip = Awaited<ReturnType<typeof byteFlip>>;

/** Refused with the failure named, or served nothing unverified (the damage answered 500). */
function expectNothingUnverified(r: Flip): void {
  const why = summary(r);
  expect(r.badReceipts, why).toEqual([]);
  expect(r.flipped.length, why).toBeGreaterThan(0);
  if (!r.restart.ready) {
    expect(r.restart.exitCode, why).not.toBe(0);
    expect(r.restart.exitCode, why).not.toBeUndefined();
    expect(r.restart.output, why).toMatch(/STORAGE_FAILURE|CORRUPTION|INTEGRITY_FAILURE/);
    return;
  }
  const a = r.audit!;
  expect(a.unverifiedServed, why).toBe(0);
  expect(a.doubleSigned, why).toBe(0);
  expect(a.forked, why).toBe(0);
  expect(a.behind, why).toBe(0);
  // The damaged entries are refused as damaged (500 INTEGRITY_FAILURE), the others served.
  expect(a.integrity, why).toBeGreaterThanOrEqual(1);
  expect(a.lost, why).toBe(0);
}

describe("flipped bytes at rest", () => {
  faultIt(
    "a byte flipped in a .ldb table: refused or 500 INTEGRITY_FAILURE, never 200 with other bytes; fsck fails",
    [],
    async (work) => {
      const fsck: { when: string; code: number | null; out: string }[] = [];
      const check = (when: string) => (data: string) => {
        const f = runVellum(["fsck", "--data", data], { timeoutMs: 30_000 });
        fsck.push({ when, code: f.code, out: f.stdout + f.stderr });
      };
      const r = await byteFlip(work, "ldb", {
        entries: 300,
        flips: 2,
        beforeFlip: check("before"),
        afterFlip: check("after"),
      });
      expectNothingUnverified(r);
      expect(
        fsck.map((f) => [f.when, f.code]),
        JSON.stringify(fsck),
      ).toEqual([
        ["before", 0],
        ["after", 1],
      ]);
    },
    60_000,
  );

  faultIt(
    "a byte flipped in the write-ahead log, valid records after it: the start is refused (CORRUPTION)",
    [],
    async (work) => {
      const r = await byteFlip(work, "log", { entries: 300, flips: 1 });
      expectNothingUnverified(r);
      // LevelDB alone would drop the damaged record and everything after it in its block, and
      // start; the driver must refuse instead (issue 10: it is what lost entries 997-999).
      expect(r.restart.ready, summary(r)).toBe(false);
    },
    60_000,
  );
});
