/**
 * `vellum witness --state-mirror DIR` against real witness processes on 127.0.0.1: a witness whose
 * data directory is restored from an older copy refuses to start (it would forget what it
 * cosigned and could vouch for a fork); without the mirror the same restore starts (the weaker
 * setup, documented); a mirror it cannot write stops cosigning (503) until it can.
 */
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HashTree } from "../../scripts/lib/fault-scenarios.js";
import { base64Encode } from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { spawnVellum, startVellum, type VellumProcess } from "../helpers/processes.js";

const work = mkdtempSync(join(tmpdir(), "vellum-witness-mirror-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const ORIGIN = "mirror.test.example/log";
const signer = new CheckpointSigner(ORIGIN, sha256(new TextEncoder().encode(ORIGIN)));
const tree = new HashTree();
const leaf = (i: number) => sha256(new TextEncoder().encode(`leaf ${i}`));

/** Asks the witness to cosign the tree at `size`, extending `old`; the HTTP status. */
async function addCheckpoint(url: string, old: number, size: number): Promise<number> {
  while (tree.leaves.length < size) tree.leaves.push(leaf(tree.leaves.length));
  const cp = signer.sign(size, tree.root(size), Math.floor(Date.now() / 1000));
  const proof = old === 0 || old >= size ? [] : tree.consistency(old, size);
  const body = `old ${old}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${cp.note}`;
  const res = await fetch(`${url}/add-checkpoint`, { method: "POST", body });
  await res.text();
  return res.status;
}

const args = (data: string, mirror?: string) => [
  "witness",
  ...["--data", data, "--port", "0", "--name", "w.mirror.test/witness"],
  ...["--trust", signer.verifierKey],
  ...(mirror === undefined ? [] : ["--state-mirror", mirror]),
];

async function stop(w: VellumProcess): Promise<void> {
  w.child.kill("SIGTERM");
  await w.exited;
}

describe("witness --state-mirror", () => {
  it("refuses to start on a data directory restored from an older copy; starts without the mirror", async () => {
    const data = join(work, "w1");
    const mirror = join(work, "m1");
    mkdirSync(mirror);
    let w = await startVellum(args(data, mirror));
    expect(await addCheckpoint(w.url, 0, 3)).toBe(200);
    await stop(w);
    cpSync(data, join(work, "w1-backup"), { recursive: true });
    w = await startVellum(args(data, mirror));
    expect(await addCheckpoint(w.url, 3, 8)).toBe(200);
    await stop(w); // flushes the mirror (it is also written within a second while running)

    // The older copy put back: the witness would have forgotten size 8.
    rmSync(data, { recursive: true, force: true });
    cpSync(join(work, "w1-backup"), data, { recursive: true });
    const refused = spawnVellum(args(data, mirror));
    const { code } = await refused.exited;
    expect(code, refused.output()).toBe(3);
    expect(refused.output()).toMatch(
      /STATE_MISMATCH: the witness's storage is behind its state mirror/,
    );
    expect(refused.output()).toMatch(/cosigned size 8, storage holds size 3/);

    // Without the mirror the restore goes unnoticed (the weaker setup the README describes).
    w = await startVellum(args(data));
    expect(await addCheckpoint(w.url, 3, 5)).toBe(200); // a size it had already passed
    await stop(w);
  }, 60_000);

  it("cosigns nothing while the mirror cannot be written, and again once it can", async () => {
    const data = join(work, "w2");
    const mirror = join(work, "m2");
    mkdirSync(mirror);
    const w = await startVellum(args(data, mirror));
    try {
      expect(await addCheckpoint(w.url, 0, 2)).toBe(200);
      await new Promise((r) => setTimeout(r, 1500)); // the first mirror write
      // A mirror that cannot be written: its directory read-only, and root writes anyway, so
      // the directory is replaced by a file of the same name.
      rmSync(mirror, { recursive: true, force: true });
      cpSync(process.execPath, mirror); // any file
      chmodSync(mirror, 0o400);
      expect(await addCheckpoint(w.url, 2, 4)).toBe(200); // stored; its mirror write fails later
      let status = 200;
      let old = 4; // the size the witness holds
      for (let i = 0; i < 40 && status !== 503; i++) {
        await new Promise((r) => setTimeout(r, 250));
        status = await addCheckpoint(w.url, old, old + 1);
        if (status === 200) old++;
      }
      expect(status).toBe(503);
      expect(w.output()).toMatch(/the state mirror is behind, so nothing is cosigned/);
      // Fixed: the mirror catches up (retrying with back-off) and cosigning resumes.
      rmSync(mirror, { force: true });
      mkdirSync(mirror);
      let ok = false;
      for (let i = 0; i < 80 && !ok; i++) {
        await new Promise((r) => setTimeout(r, 250));
        ok = (await addCheckpoint(w.url, old, old + 1)) === 200;
      }
      expect(ok, w.output()).toBe(true);
      expect(w.output()).toMatch(
        /state mirror for \\?"mirror\.test\.example\/log\\?" is up to date again/,
      );
    } finally {
      await stop(w);
    }
  }, 60_000);
});
