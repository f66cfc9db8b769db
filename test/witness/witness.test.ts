/**
 * The witness, against checkpoints and proofs from a real Vellum log: every status code path of
 * C2SP tlog-witness add-checkpoint, with the stored state checked after each refusal, evidence
 * kept for signed conflicts, and concurrent requests unable to roll a log back.
 */
import { describe, expect, it } from "vitest";
import { base64Encode, hexEncode } from "../../src/core/bytes.js";
import { cosignatureVerifier } from "../../src/core/cosignature.js";
import { sha256 } from "../../src/core/crypto.js";
import { signerFromSeed, verifierFromKey } from "../../src/core/keys.js";
import { verifyNote } from "../../src/core/note.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { createWitnessApp } from "../../src/witness/app.js";
import { checkEvidence } from "../../src/witness/evidence.js";
import { type TrustedLogs, Witness } from "../../src/witness/witness.js";
import { ORIGIN, openMemoryLog, payloadOf, SEED } from "../log/helpers.js";

const WITNESS_SEED = new Uint8Array(32).fill(77);

async function setup() {
  const { log } = await openMemoryLog();
  const db = new MemoryDatabase();
  const trusted: TrustedLogs = new Map([[ORIGIN, [verifierFromKey(log.signer.verifierKey)]]]);
  const witness = new Witness({
    name: "witness.test/w1",
    seed: WITNESS_SEED,
    kv: db.namespace("witness"),
    trusted,
  });
  const grow = async (n: number) => {
    await Promise.all(
      Array.from({ length: n }, (_, i) => log.submit(payloadOf(log.size + i + Math.random()))),
    );
    return log.checkpoint.note;
  };
  const body = (old: number, proof: Uint8Array[], note: string) =>
    `old ${old}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${note}`;
  const add = async (old: number, note = log.checkpoint.note) => {
    const size = Number(note.split("\n")[1]);
    const proof = old === 0 ? [] : await log.consistencyProof(old, size);
    return witness.addCheckpoint(body(old, proof, note));
  };
  return { log, db, witness, grow, body, add };
}

describe("witness add-checkpoint", () => {
  it("cosigns a first checkpoint from old 0, stores it, and the line verifies", async () => {
    const { log, witness, grow, add } = await setup();
    const note = await grow(5);
    const result = await add(0, note);
    expect(result.status).toBe(200);
    const line = (result as { body: string }).body;
    expect(line).toMatch(/^— witness\.test\/w1 [A-Za-z0-9+/]{102}==\n$/);
    const w = cosignatureVerifier("witness.test/w1", signerFromSeed("x", WITNESS_SEED).publicKey);
    const verified = verifyNote(note + line, [verifierFromKey(log.signer.verifierKey), w]);
    expect(verified.signatures.map((s) => s.name)).toEqual([ORIGIN, "witness.test/w1"]);
    const state = await witness.latest(ORIGIN);
    expect(state?.size).toBe(5);
    expect(state?.note).toBe(note + line);
  });

  it("extends with a consistency proof; refuses stale old sizes with 409 and the size", async () => {
    const { witness, grow, add } = await setup();
    await add(0, await grow(3));
    const later = await grow(10);
    expect((await add(3, later)).status).toBe(200);
    const stale = await add(3, await grow(2));
    expect(stale).toMatchObject({ status: 409, size: 13 });
    expect((await witness.latest(ORIGIN))?.size).toBe(13);
  });

  it("answers 404 for an unknown origin and 403 without a trusted signature, changing nothing", async () => {
    const { witness, grow, add, body } = await setup();
    await add(0, await grow(2));
    const stranger = new CheckpointSigner("other.example/log", SEED).sign(1, new Uint8Array(32), 1);
    expect((await witness.addCheckpoint(body(0, [], stranger.note))).status).toBe(404);
    const forged = new CheckpointSigner(ORIGIN, new Uint8Array(32).fill(9)).sign(
      9,
      new Uint8Array(32),
      1,
    );
    expect((await witness.addCheckpoint(body(2, [], forged.note))).status).toBe(403);
    const tampered = (await grow(1)).replace(/\n(\d+)\n/, "\n99\n");
    expect((await witness.addCheckpoint(body(2, [], tampered))).status).toBe(403);
    expect((await witness.latest(ORIGIN))?.size).toBe(2);
  });

  it("answers 400 for malformed bodies and old > size", async () => {
    const { witness, grow, body } = await setup();
    const note = await grow(4);
    for (const bad of [
      "",
      `old 01\n\n${note}`,
      `old x\n\n${note}`,
      `old 0\nnot-base64\n\n${note}`,
      `old 0\n${note}`,
      "old 0\n\nnot a note\n",
    ]) {
      expect((await witness.addCheckpoint(bad)).status, JSON.stringify(bad.slice(0, 20))).toBe(400);
    }
    expect((await witness.addCheckpoint(body(5, [], note))).status).toBe(400);
    expect(await witness.latest(ORIGIN)).toBeUndefined();
  });

  it("answers 422 for a proof from 0, a bad proof and a bad empty root; keeps evidence only of the signed bad root", async () => {
    const { log, witness, grow, add, body } = await setup();
    const note = await grow(4);
    expect((await witness.addCheckpoint(body(0, [new Uint8Array(32)], note))).status).toBe(422);
    const emptyWrong = new CheckpointSigner(ORIGIN, SEED).sign(0, new Uint8Array(32).fill(5), 1);
    expect((await witness.addCheckpoint(body(0, [], emptyWrong.note))).status).toBe(422);
    expect((await add(0, note)).status).toBe(200);
    const next = await grow(4);
    const proof = await log.consistencyProof(4, 8);
    proof[0] = new Uint8Array(32).fill(1);
    const refused = await witness.addCheckpoint(body(4, proof, next));
    expect(refused.status).toBe(422);
    expect((await witness.latest(ORIGIN))?.size).toBe(4);
    // A bad proof proves nothing about the log; a signed size-0 checkpoint with a root does.
    const kept = await witness.evidence();
    expect(kept.map((e) => [e.origin, e.kind])).toEqual([[ORIGIN, "empty-root"]]);
    expect(checkEvidence(kept[0]!, [verifierFromKey(log.signer.verifierKey)])).toBe("empty-root");
    expect(witness.evidenceStats).toMatchObject({ kept: 1, unprovable: 2 });
  });

  it("refuses a second root for the same size (a fork) with 409 and keeps it as evidence", async () => {
    const { witness, grow, add, body } = await setup();
    const note = await grow(6);
    expect((await add(0, note)).status).toBe(200);
    const fork = new CheckpointSigner(ORIGIN, SEED).sign(
      6,
      new Uint8Array(32).fill(3),
      Math.floor(Date.now() / 1000),
    );
    expect(await witness.addCheckpoint(body(6, [], fork.note))).toMatchObject({
      status: 409,
      size: 6,
    });
    expect((await witness.evidence())[0]?.reason).toMatch(/second root for size 6/);
    expect((await witness.latest(ORIGIN))?.size).toBe(6);
    // Re-submitting the same checkpoint is fine (idempotent).
    expect((await add(6, note)).status).toBe(200);
  });

  it("cannot be rolled back by concurrent requests", async () => {
    const { log, witness, grow, body } = await setup();
    const sizes: number[] = [];
    const notes: string[] = [];
    for (let i = 0; i < 8; i++) {
      notes.push(await grow(3));
      sizes.push(log.size);
    }
    // All claim old 0; exactly one can win, the others are stale (409).
    const results = await Promise.all(notes.map((n) => witness.addCheckpoint(body(0, [], n))));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const winner = (await witness.latest(ORIGIN))!.size;
    // Now concurrent extensions from the winner: any may land, but the size never decreases.
    const proofs = await Promise.all(
      notes.map(async (n, i) =>
        sizes[i]! >= winner
          ? body(winner, await log.consistencyProof(winner, sizes[i]!), n)
          : body(winner, [], n),
      ),
    );
    await Promise.all(proofs.map((p) => witness.addCheckpoint(p)));
    expect((await witness.latest(ORIGIN))!.size).toBeGreaterThanOrEqual(winner);
  });

  it("persists state across a restart", async () => {
    const { db, grow, add } = await setup();
    await add(0, await grow(2));
    const again = new Witness({
      name: "witness.test/w1",
      seed: WITNESS_SEED,
      kv: db.simulateRestart().namespace("witness"),
      trusted: new Map(),
    });
    expect((await again.latest(ORIGIN))?.size).toBe(2);
  });
});

describe("witness HTTP", () => {
  it("speaks tlog-witness: text bodies, 409 as text/x.tlog.size, checkpoint by origin hash", async () => {
    const { witness, grow, body } = await setup();
    const app = createWitnessApp(witness);
    const note = await grow(3);
    const ok = await app.request("/add-checkpoint", { method: "POST", body: body(0, [], note) });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^— witness\.test\/w1 /);
    const stale = await app.request("/add-checkpoint", { method: "POST", body: body(0, [], note) });
    expect(stale.status).toBe(409);
    expect(stale.headers.get("Content-Type")).toBe("text/x.tlog.size");
    expect(await stale.text()).toBe("3\n");
    const hash = hexEncode(sha256(new TextEncoder().encode(ORIGIN)));
    const cp = await app.request(`/${hash}/checkpoint`);
    expect(cp.status).toBe(200);
    expect(await cp.text()).toMatch(/— witness\.test\/w1 /);
    expect((await app.request(`/${"0".repeat(64)}/checkpoint`)).status).toBe(404);
    const bad = await app.request("/add-checkpoint", { method: "POST", body: "nonsense" });
    expect(bad.status).toBe(400);
    expect((await bad.text()).trim().split("\n")).toHaveLength(1);
    const info = (await (await app.request("/v1/witness")).json()) as {
      logs: { origin: string; size: number }[];
    };
    expect(info.logs).toEqual([expect.objectContaining({ origin: ORIGIN, size: 3 })]);
  });
});
