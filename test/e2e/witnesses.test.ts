/**
 * One log and three witness processes on 127.0.0.1, quorum 2 of 3, all real `vellum` processes:
 * the log keeps publishing with one witness dead, stops publishing new checkpoints with two dead
 * (while still storing entries), and catches up when they return; a forked log (same key,
 * different history) cannot start with the witness policy, and every witness keeps the evidence.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { parsePolicy, verifyQuorum } from "../../src/core/policy.js";
import { runVellum } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { spawnVellum, startVellum, type VellumProcess } from "../helpers/processes.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-witnesses-"));
const ORIGIN = "e2e.test/log";

let logKey: string;
let policyFile: string;
const witnessPorts: number[] = [];
const witnesses: (VellumProcess | undefined)[] = [];
let log: VellumProcess;
let token: string;

const startWitness = (i: number) =>
  startVellum([
    "witness",
    "--data",
    join(dir, `w${i}`),
    "--port",
    String(witnessPorts[i]),
    "--name",
    `w${i}.e2e.test/witness`,
    "--trust",
    logKey,
  ]);

async function submit(text: string) {
  const res = await fetch(`${log.url}/v1/entries`, {
    method: "POST",
    body: text,
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as {
    index: number;
    treeSize: number;
    checkpoint: string;
    witnessed: boolean;
  };
}
const published = async () => {
  const note = await (await fetch(`${log.url}/checkpoint`)).text();
  return { note, size: openCheckpoint(note, verifierFromKey(logKey)).checkpoint.size };
};
/** `vellum serve` on `dataDir`, publishing only checkpoints the policy's witnesses cosign. */
function startWitnessedLog(dataDir: string) {
  return startVellum(
    [
      "serve",
      ...["--data", dataDir, "--port", "0"],
      ...["--witness-policy", policyFile, "--witness-timeout-ms", "500"],
    ],
    "/readyz",
  );
}

async function until(what: string, predicate: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  // The log's key exists before the log starts, so the witnesses can trust it.
  const data = join(dir, "log");
  mkdirSync(data, { mode: 0o700 });
  const k = runVellum(["keygen", "--name", ORIGIN, "--out", join(data, "log.key")]);
  expect(k.code, k.stderr).toBe(0);
  logKey = k.stdout.trim();
  for (let i = 0; i < 3; i++) witnessPorts.push(await freePort());
  for (let i = 0; i < 3; i++) witnesses[i] = await startWitness(i);
  const vkeys = [0, 1, 2].map((i) =>
    readFileSync(join(dir, `w${i}`, "witness.vkey"), "utf8").trim(),
  );
  policyFile = join(dir, "policy.txt");
  writeFileSync(
    policyFile,
    [
      `log ${logKey}`,
      ...vkeys.map((v, i) => `witness w${i} ${v} http://127.0.0.1:${witnessPorts[i]}`),
      "group two-of-three 2 w0 w1 w2",
      "quorum two-of-three",
      "",
    ].join("\n"),
  );
  log = await startWitnessedLog(data);
  token = readFileSync(join(data, "admin.token"), "utf8").trim();
  await until(
    "a first witnessed checkpoint",
    async () => (await fetch(`${log.url}/checkpoint`)).status === 200,
  );
}, 60_000);

afterAll(async () => {
  await log?.stop();
  for (const w of witnesses) await w?.stop();
});

describe("witnessed log, end to end", () => {
  it("publishes with 3 and with 2 witnesses, holds with 1, and catches up", {
    timeout: 90_000,
  }, async () => {
    const policy = parsePolicy(readFileSync(policyFile, "utf8"));
    const a = await submit("entry a");
    expect(a.witnessed).toBe(true);
    expect(verifyQuorum(policy, a.checkpoint).witnesses.size).toBeGreaterThanOrEqual(2);

    await witnesses[0]!.kill();
    witnesses[0] = undefined;
    const b = await submit("entry b");
    expect(b.witnessed).toBe(true);
    expect((await published()).size).toBeGreaterThanOrEqual(b.index + 1);

    await witnesses[1]!.kill();
    witnesses[1] = undefined;
    const held = (await published()).size;
    const c = await submit("entry c"); // stored and signed, but not witnessed
    expect(c.witnessed).toBe(false);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await published()).size).toBe(held);
    const info = (await (await fetch(`${log.url}/v1/log`)).json()) as {
      treeSize: number;
      witnesses: { name: string; lastError: string | null }[];
    };
    expect(info.treeSize).toBe(c.index + 1);
    expect(info.witnesses.filter((w) => w.lastError !== null).length).toBeGreaterThanOrEqual(2);

    witnesses[0] = await startWitness(0);
    witnesses[1] = await startWitness(1);
    await until("publishing to catch up", async () => (await published()).size >= c.index + 1);
    verifyQuorum(policy, (await published()).note);
  });

  it("a forked log with the same key cannot start, and every witness keeps evidence", {
    timeout: 60_000,
  }, async () => {
    // Every witness first cosigns the same size, one that is not a power of two: from a size
    // 2^k the consistency proof starts at the witness's own root, so a fork shows only as a bad
    // proof for the new tree, which proves nothing about the log (the witness keeps no
    // evidence); from any other size it proves the two trees differ.
    await submit("entry d");
    const e = await submit("entry e");
    const target = e.index + 1;
    expect(target & (target - 1)).not.toBe(0);
    await until("every witness at the same size", async () => {
      const info = (await (await fetch(`${log.url}/v1/log`)).json()) as {
        witnesses: { cosignedSize: number | null }[];
      };
      return info.witnesses.every((w) => w.cosignedSize === target);
    });
    const forkData = join(dir, "fork");
    mkdirSync(forkData, { mode: 0o700 });
    cpSync(join(dir, "log", "log.key"), join(forkData, "log.key"));
    // With the witnesses, its empty storage is behind what they cosigned: it refuses to start.
    const refused = spawnVellum([
      "serve",
      ...["--data", forkData, "--port", "0"],
      ...["--witness-policy", policyFile, "--witness-timeout-ms", "500"],
    ]);
    expect((await refused.exited).code, refused.output()).toBe(3);
    expect(refused.stderr()).toMatch(/storage is behind what this log's witnesses cosigned/);
    // Grown without them past what they cosigned, it is refused again: its tree does not extend
    // the one they cosigned, and each keeps the conflicting checkpoint as evidence.
    const fork = await startVellum(["serve", "--data", forkData, "--port", "0"], "/readyz");
    try {
      const forkToken = readFileSync(join(forkData, "admin.token"), "utf8").trim();
      for (let i = 0; i < 8; i++) {
        const res = await fetch(`${fork.url}/v1/entries`, {
          method: "POST",
          body: `forged ${i}`,
          headers: { Authorization: `Bearer ${forkToken}` },
        });
        expect(res.status).toBe(201);
      }
    } finally {
      await fork.stop();
    }
    // A generous timeout: every witness must get the fork's checkpoint (and keep evidence)
    // before the log gives up, even on a loaded machine.
    const again = spawnVellum([
      "serve",
      ...["--data", forkData, "--port", "0"],
      ...["--witness-policy", policyFile, "--witness-timeout-ms", "10000"],
    ]);
    expect((await again.exited).code, again.output()).toBe(3);
    expect(again.stderr()).toMatch(/does not extend the size-\d+ tree it cosigned/);
    for (const w of witnesses) {
      const { evidence } = (await (await fetch(`${w!.url}/v1/evidence`)).json()) as {
        evidence: { origin: string }[];
      };
      expect(evidence.some((e) => e.origin === ORIGIN)).toBe(true);
    }
  });
});
