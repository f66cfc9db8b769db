/**
 * The fault suite's test wrapper: a test that needs root, a tmpfs or strace runs where they are,
 * is skipped with a message on a developer's machine without them, and FAILS under CI=true
 * (where scripts/ci-fault-tools.sh has installed strace), so CI can never pass by skipping.
 * Each test gets a fresh temporary directory, removed afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { missingTools, type Tool } from "../../scripts/lib/fault-env.js";
import type { ScenarioReport } from "../../scripts/lib/fault-scenarios.js";
import { installNodeCrypto } from "../../src/platform/node-crypto.js";

installNodeCrypto();

const CI = process.env.CI === "true";

export function faultIt(
  name: string,
  tools: readonly Tool[],
  fn: (work: string) => Promise<void>,
  timeoutMs: number,
): void {
  const missing = missingTools(tools);
  if (missing.length > 0 && !CI) {
    console.warn(`vellum fault suite: skipping "${name}": ${missing.join("; ")}`);
    it.skip(`${name} (needs ${tools.join(", ")})`, () => {});
    return;
  }
  it(
    name,
    async () => {
      if (missing.length > 0) {
        throw new Error(`under CI this fault test must run, but: ${missing.join("; ")}`);
      }
      const work = mkdtempSync(join(tmpdir(), "vellum-fault-"));
      try {
        await fn(work);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    timeoutMs,
  );
}

/** Keys of a tally, e.g. ["2xx", "503 STORAGE_FAILURE"]. */
export const keysOf = (t: ReadonlyMap<string, number>): string[] => [...t.keys()];

/** The facts of a report, for assertion messages (what happened, not the whole server log). */
export function summary(r: ScenarioReport): string {
  const tally = (t: ReadonlyMap<string, number>) => JSON.stringify(Object.fromEntries(t));
  const { notes: auditNotes, ...audit } = r.audit ?? { notes: [] };
  return [
    `${r.name}: acknowledged ${r.acknowledged}, after the fault cleared ${r.ackedAfterClear}, after restart ${r.ackedAfterRestart}; system calls failed by strace ${r.injected}`,
    `during the fault: ${tally(r.faultAnswers)}; /readyz ${tally(r.faultReadyz)}; after: ${tally(r.clearedReadyz)}`,
    `details: ${JSON.stringify(r.details)}`,
    `restart: ready ${r.restart.ready}, exit ${r.restart.exitCode}; audit ${JSON.stringify(audit)}`,
    ...auditNotes,
    ...r.notes,
    ...r.badReceipts,
    `restart output (tail):\n${r.restart.output.slice(-800)}`,
  ].join("\n");
}

/**
 * After a storage fault, a kill -9 and a restart: every acknowledged entry is served with its
 * bytes, nothing is served that the tree does not hold, no size has a second signed root, and
 * every receipt's checkpoint is in the restarted log's history.
 */
export function expectNothingLost(r: ScenarioReport): void {
  const why = summary(r);
  expect(r.badReceipts, why).toEqual([]);
  expect(r.restart.ready, why).toBe(true);
  expect(r.ackedAfterRestart, why).toBeGreaterThan(0);
  const a = r.audit!;
  expect(a.acknowledged, why).toBeGreaterThan(0);
  expect(
    {
      lost: a.lost,
      integrity: a.integrity,
      unverifiedServed: a.unverifiedServed,
      doubleSigned: a.doubleSigned,
      forked: a.forked,
      behind: a.behind,
      unprovable: a.unprovable,
    },
    why,
  ).toEqual({
    lost: 0,
    integrity: 0,
    unverifiedServed: 0,
    doubleSigned: 0,
    forked: 0,
    behind: 0,
    unprovable: 0,
  });
}
