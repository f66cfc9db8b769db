/**
 * Issue 10, the witness under a failing disk: the real `vellum witness` cosigns an honest log's
 * checkpoints (made here, signed with the log's key) while its data directory fills to ENOSPC (a
 * 5 MiB tmpfs) or its write-ahead log's writes fail (strace). It must answer 503 while it cannot
 * store, cosign again once the fault clears (no restart), and after kill -9 come back at (at
 * least) the largest size it cosigned, so that a fork of a checkpoint it cosigned (same key, the
 * same first leaves as far as a lagging witness would hold, then others) is refused.
 *
 * Needs root (mount, ptrace) and strace: skipped without them, except under CI=true.
 */
import { describe, expect } from "vitest";
import { type WitnessReport, witnessEnospc } from "../../scripts/lib/fault-scenarios.js";
import { faultIt } from "./helpers.js";

function expectNoForkCosigned(r: WitnessReport): void {
  const { serverLog, ...facts } = r;
  const why = `${JSON.stringify({ ...facts, faultAnswers: Object.fromEntries(r.faultAnswers) })}\n${serverLog.slice(-1500)}`;
  expect(r.cosigned, why).toBeGreaterThan(0);
  // While it cannot store: 503 (a 409 telling the log its size is a correct answer too).
  const failed = [...r.faultAnswers.keys()].filter((k) => k !== "200" && k !== "409");
  expect(r.faultAnswers.get("503") ?? 0, why).toBeGreaterThan(0);
  for (const k of failed) expect(k, why).toBe("503");
  expect(serverLog, why).toMatch(/ENOSPC/);
  expect(r.cosignedAfterClear, why).toBeGreaterThan(0);
  expect(r.restart.ok, why).toBe(true);
  expect(r.restartedSize, why).toBeGreaterThanOrEqual(r.maxCosigned);
  expect(r.forkCosigned, why).toBe(false);
  expect(r.honestAfterRestart, why).toBe(true);
}

describe("the witness on a failing disk, then kill -9", () => {
  faultIt(
    "a tmpfs full to ENOSPC: 503 while full, cosigns again after, restarts where it was, refuses the fork",
    ["tmpfs"],
    async (work) => {
      expectNoForkCosigned(await witnessEnospc(work, "tmpfs", { warmup: 40, afterClear: 20 }));
    },
    60_000,
  );

  faultIt(
    "write → ENOSPC on its write-ahead log (strace): the same",
    ["strace"],
    async (work) => {
      expectNoForkCosigned(await witnessEnospc(work, "strace", { warmup: 40, afterClear: 20 }));
    },
    60_000,
  );
});
