/**
 * A real `vellum witness` process whose data directory is on a 4 MiB tmpfs (root only): it
 * cosigns a real log's checkpoints until the disk is full (ENOSPC), answers 503 naming it, logs
 * it, reopens its store on its own and cosigns again once there is room; after `kill -9` it
 * restarts at least at the last size it acknowledged with a 200 (issue 10: it restarted 114
 * sizes back) and refuses a second root for that size. Bounded: at most 4,000 requests.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { base64Encode, hexEncode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { sha256 } from "../../src/core/crypto.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";
import { ORIGIN, openMemoryLog, payloadOf, SEED } from "../log/helpers.js";

const canMount = process.env.CI === "true" || process.getuid?.() === 0;
let disk: string | undefined;
let witness: VellumProcess | undefined;
afterAll(async () => {
  await witness?.kill();
  if (disk !== undefined) {
    execFileSync("umount", ["-l", disk]);
    rmSync(disk, { recursive: true, force: true });
  }
});

const body = (old: number, proof: Uint8Array[], note: string) =>
  `old ${old}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${note}`;

describe.skipIf(!canMount)("vellum witness on a full disk (a 4 MiB tmpfs; root only)", () => {
  it("stops cosigning at ENOSPC, recovers by itself, and loses no acknowledged size across kill -9", {
    timeout: 120_000,
  }, async () => {
    disk = execFileSync("mktemp", ["-d", join(tmpdir(), "vellum-wdisk-XXXXXX")], {
      encoding: "utf8",
    }).trim();
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk]);
    const data = join(disk, "w");
    mkdirSync(data, { mode: 0o700 });
    const { log } = await openMemoryLog();
    const args = ["witness", "--data", data, "--port", "0", "--trust", log.signer.verifierKey];
    witness = await startVellum(args);
    // Leave about 256 KiB: a few hundred cosignatures fill the write-ahead log.
    const filler = join(disk, "filler");
    const { bavail, bsize } = statfsSync(disk);
    writeFileSync(filler, new Uint8Array(Math.max(0, bavail * bsize - 256 * 1024)));

    let known = 0; // the witness's size, as a log learns it
    let acked = 0; // the largest size answered 200
    const seen: number[] = [];
    const round = async () => {
      await log.submit(payloadOf(log.size, "disk"));
      const size = log.size;
      const proof = known === 0 ? [] : await log.consistencyProof(known, size);
      const res = await fetch(`${witness!.url}/add-checkpoint`, {
        method: "POST",
        body: body(known, proof, log.checkpoint.note),
      });
      const text = await res.text();
      seen.push(res.status);
      if (res.status === 200) known = acked = size;
      else if (res.status === 409) known = Number(text.trim());
      else expect(res.status, text).toBe(503);
      return { status: res.status, text };
    };

    let first503: { status: number; text: string } | undefined;
    for (let i = 0; i < 3_000 && first503 === undefined; i++) {
      const r = await round();
      if (r.status === 503) first503 = r;
    }
    expect(first503?.text).toMatch(/disk full \(ENOSPC\)/);
    expect(acked).toBeGreaterThan(0);

    // Room again: it reopens its store by itself and cosigns again, without a restart.
    rmSync(filler);
    let again = false;
    for (let i = 0; i < 1_000 && !again; i++) {
      again = (await round()).status === 200;
      if (!again) await new Promise((r) => setTimeout(r, 20));
    }
    expect(again).toBe(true);
    expect(witness.stderr()).toMatch(/storage write failed \(disk full \(ENOSPC\)\)/);
    expect(witness.stderr()).toMatch(/cosigning again/);

    // kill -9 right after acknowledging: the restarted witness is at least where it said.
    for (let i = 0; i < 5; i++) await round();
    await witness.kill();
    witness = await startVellum(args);
    const hash = hexEncode(sha256(new TextEncoder().encode(ORIGIN)));
    const note = await (await fetch(`${witness.url}/${hash}/checkpoint`)).text();
    const restarted = openCheckpoint(note, verifierFromKey(log.signer.verifierKey)).checkpoint;
    expect(restarted.size).toBeGreaterThanOrEqual(acked);
    const fork = new CheckpointSigner(ORIGIN, SEED).sign(
      restarted.size,
      new Uint8Array(32).fill(9),
      1,
    );
    const refused = await fetch(`${witness.url}/add-checkpoint`, {
      method: "POST",
      body: body(restarted.size, [], fork.note),
    });
    expect(refused.status).toBe(409);
    expect(seen.length).toBeLessThanOrEqual(4_010);
  });
});
