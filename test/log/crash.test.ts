/**
 * The crash test (scripts/crash-test.ts) on a small budget: a child appending to a LevelDB log is
 * killed with SIGKILL 8 times (and, with --http, a child serving the HTTP API while this side
 * submits over 127.0.0.1, 4 times); after each kill every acknowledged entry, receipt and
 * checkpoint must still check out. The script does the checking; this asserts it passed and did
 * real work.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCRIPT = fileURLToPath(new URL("../../scripts/crash-test.ts", import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString("utf8");
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  // The script bounds itself; this only guards against it hanging (SIGTERM lets it clean up).
  const guard = setTimeout(() => child.kill("SIGTERM"), 100_000);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    }),
  );
}

async function expectPass(args: string[], minKills: number): Promise<void> {
  const { code, stdout, stderr } = await run(args);
  expect(stderr + stdout, "crash-test output").not.toMatch(/FAIL|ERROR/);
  expect(code).toBe(0);
  const summary =
    /crash-test: PASS kills=(\d+) entries=(\d+) acknowledged=(\d+) receipts=(\d+)/.exec(stdout);
  expect(summary, stdout).not.toBeNull();
  const [kills, entries, acknowledged, receipts] = summary!.slice(1).map(Number);
  expect(kills).toBeGreaterThanOrEqual(minKills);
  expect(entries).toBeGreaterThan(0);
  expect(acknowledged).toBeGreaterThan(0);
  expect(receipts).toBeGreaterThanOrEqual(acknowledged!);
}

it("keeps every acknowledged entry, receipt and checkpoint across 8 SIGKILLs", async () => {
  await expectPass(["--kills", "8", "--seconds", "40"], 8);
}, 120_000);

it("does the same behind the HTTP API (single entries and multiproof batches) across 4 SIGKILLs", async () => {
  await expectPass(["--http", "--kills", "4", "--seconds", "40"], 4);
}, 120_000);
