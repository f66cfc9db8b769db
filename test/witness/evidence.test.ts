/**
 * Witness evidence is kept only for conflicts that prove the log misbehaved, each once, bounded
 * per log: a flood of refused requests built from public data (the witness's own cosigned
 * checkpoint, real checkpoints with junk proofs) stores nothing, while a real fork (same key,
 * other history) is stored once however often it is sent, as a record that proves itself with
 * the log's key alone.
 */
import { describe, expect, it } from "vitest";
import { base64Encode } from "../../src/core/bytes.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { createWitnessApp } from "../../src/witness/app.js";
import { checkEvidence, type EvidenceLimits } from "../../src/witness/evidence.js";
import { Witness } from "../../src/witness/witness.js";
import { ORIGIN, openMemoryLog, payloadOf, SEED } from "../log/helpers.js";

const body = (old: number, proof: Uint8Array[], note: string) =>
  `old ${old}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${note}`;

/** Total bytes of keys and values durably stored. */
const stored = (db: MemoryDatabase) =>
  db.snapshot().entries.reduce((n, [k, v]) => n + k.length + v.length, 0);

async function setup(evidenceLimits?: EvidenceLimits) {
  const { log } = await openMemoryLog();
  const db = new MemoryDatabase();
  const logKeys = [verifierFromKey(log.signer.verifierKey)];
  const witness = new Witness({
    name: "witness.test/w1",
    seed: new Uint8Array(32).fill(77),
    kv: db.namespace("witness"),
    trusted: new Map([[ORIGIN, logKeys]]),
    ...(evidenceLimits === undefined ? {} : { evidenceLimits }),
  });
  const grow = async (n: number, tag = "entry") => {
    for (let i = 0; i < n; i++) await log.submit(payloadOf(log.size, tag));
    return log.checkpoint.note;
  };
  /** Cosigns the log at its current size (first contact). */
  const cosignNow = async () => {
    const result = await witness.addCheckpoint(body(0, [], log.checkpoint.note));
    expect(result.status).toBe(200);
    return (await witness.latest(ORIGIN))!;
  };
  return { log, db, witness, logKeys, grow, cosignNow };
}

describe("witness evidence", () => {
  it("stores nothing for refusals built from public data, however many", async () => {
    const { log, db, witness, grow, cosignNow } = await setup();
    await grow(6);
    const cosigned = await cosignNow(); // size 6: not a power of two
    const later = await grow(5);
    const realProof = await log.consistencyProof(6, 11);
    const before = { keys: db.size, bytes: stored(db) };
    const app = createWitnessApp(witness);
    const attacks: [number, string][] = [
      // The witness's own public cosigned checkpoint plus one junk proof line (issue 10).
      [422, body(6, [new Uint8Array(32).fill(1)], cosigned.note)],
      // A real, later checkpoint with a junk proof of the right length, and of the wrong length.
      [
        422,
        body(
          6,
          realProof.map(() => new Uint8Array(32).fill(2)),
          later,
        ),
      ],
      [422, body(6, [new Uint8Array(32).fill(3)], later)],
      // The right proof with all but its first hash changed.
      [
        422,
        body(
          6,
          [realProof[0]!, ...realProof.slice(1).map(() => new Uint8Array(32).fill(4))],
          later,
        ),
      ],
      // A stale old size with a junk proof.
      [409, body(0, [new Uint8Array(32).fill(5)], later)],
    ];
    const N = 300;
    for (let i = 0; i < N; i++) {
      const [status, attack] = attacks[i % attacks.length]!;
      const res = await app.request("/add-checkpoint", { method: "POST", body: attack });
      expect(res.status, `attack ${i % attacks.length}`).toBe(status);
    }
    const refused422 = (N / attacks.length) * 4;
    expect({ keys: db.size, bytes: stored(db) }).toEqual(before);
    expect(await witness.evidence()).toEqual([]);
    expect(witness.evidenceStats).toMatchObject({ kept: 0, unprovable: refused422 });
    const metrics = await (await app.request("/metrics")).text();
    expect(metrics).toMatch(
      new RegExp(`^vellum_witness_unprovable_conflicts_total ${refused422}$`, "m"),
    );
    expect(metrics).toMatch(/^vellum_witness_evidence_total 0$/m);
    // The honest log still gets its cosignature.
    const ok = await witness.addCheckpoint(body(6, realProof, later));
    expect(ok.status).toBe(200);
  });

  it("stores a fork (same size, other root) once however often it is sent, as proof", async () => {
    const { db, witness, logKeys, grow, cosignNow } = await setup();
    await grow(6);
    const cosigned = await cosignNow();
    const forger = new CheckpointSigner(ORIGIN, SEED); // the log's own key, another history
    const before = db.size;
    for (let i = 0; i < 40; i++) {
      // The same fork with other timestamps, with the right old size and with a stale one.
      const fork = forger.sign(6, new Uint8Array(32).fill(9), 1_000 + i).note;
      const result = await witness.addCheckpoint(body(i % 2 === 0 ? 6 : 0, [], fork));
      expect(result).toMatchObject({ status: 409, size: 6 });
    }
    const kept = await witness.evidence();
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatchObject({ kind: "fork", origin: ORIGIN });
    expect(checkEvidence(kept[0]!, logKeys)).toBe("fork");
    // The record holds the witness's own cosignature of the first root, and proves nothing to a
    // verifier that does not hold the log's key.
    expect(kept[0]!.cosigned).toContain(cosigned.note.split("\n").at(-2)!);
    const stranger = verifierFromKey(new CheckpointSigner(ORIGIN, new Uint8Array(32)).verifierKey);
    expect(() => checkEvidence(kept[0]!, [stranger])).toThrow();
    expect(db.size).toBe(before + 2); // the record and the log's record count
    expect(witness.evidenceStats).toMatchObject({ kept: 1, duplicate: 39 });
    expect((await witness.latest(ORIGIN))?.size).toBe(6);
  });

  it("stores a signed tree that does not extend the cosigned one, with its proof", async () => {
    const { witness, logKeys, grow, cosignNow } = await setup();
    await grow(6);
    await cosignNow();
    // Same key, another history, longer: its own consistency proof computes its root, and a
    // size-6 root that is not the one cosigned.
    const { log: fork } = await openMemoryLog();
    for (let i = 0; i < 11; i++) await fork.submit(payloadOf(i, "forked"));
    const proof = await fork.consistencyProof(6, 11);
    for (let i = 0; i < 3; i++) {
      expect((await witness.addCheckpoint(body(6, proof, fork.checkpoint.note))).status).toBe(422);
    }
    const kept = await witness.evidence();
    expect(kept.map((e) => e.kind)).toEqual(["inconsistent"]);
    expect(checkEvidence(kept[0]!, logKeys)).toBe("inconsistent");
    // Altered evidence proves nothing.
    const altered = {
      ...kept[0]!,
      proof: kept[0]!.proof!.map((h, i) =>
        i === 0 ? h.replace(/^./, h[0] === "A" ? "B" : "A") : h,
      ),
    };
    expect(() => checkEvidence(altered, logKeys)).toThrow();
  });

  it("cannot prove an inconsistency from a power-of-two size with a proof, and stores nothing", async () => {
    const { witness, grow, cosignNow } = await setup();
    await grow(8);
    await cosignNow();
    const { log: fork } = await openMemoryLog();
    for (let i = 0; i < 11; i++) await fork.submit(payloadOf(i, "forked"));
    const proof = await fork.consistencyProof(8, 11);
    expect((await witness.addCheckpoint(body(8, proof, fork.checkpoint.note))).status).toBe(422);
    expect(await witness.evidence()).toEqual([]);
    expect(witness.evidenceStats.unprovable).toBe(1);
  });

  it("keeps at most the bound per log and refuses records over the size bound", async () => {
    const { db, witness, logKeys, grow, cosignNow } = await setup({ perLog: 3, maxBytes: 4096 });
    await grow(6);
    await cosignNow();
    const forger = new CheckpointSigner(ORIGIN, SEED);
    const before = db.size;
    for (let i = 0; i < 10; i++) {
      const fork = forger.sign(6, new Uint8Array(32).fill(10 + i), 1_000).note;
      expect((await witness.addCheckpoint(body(6, [], fork))).status).toBe(409);
    }
    const kept = await witness.evidence();
    expect(kept).toHaveLength(3);
    for (const e of kept) expect(checkEvidence(e, logKeys)).toBe("fork");
    expect(db.size).toBe(before + 4);
    expect(witness.evidenceStats).toMatchObject({ kept: 3, limit: 7 });

    const small = await setup({ perLog: 3, maxBytes: 200 });
    await small.grow(6);
    await small.cosignNow();
    const fork = forger.sign(6, new Uint8Array(32).fill(9), 1_000).note;
    const sizeBefore = small.db.size;
    expect((await small.witness.addCheckpoint(body(6, [], fork))).status).toBe(409);
    expect(small.db.size).toBe(sizeBefore);
    expect(small.witness.evidenceStats).toMatchObject({ kept: 0, tooLarge: 1 });
  });

  it("stores a size-0 checkpoint with a root once, before anything was cosigned", async () => {
    const { witness, logKeys } = await setup();
    const bad = new CheckpointSigner(ORIGIN, SEED);
    for (let t = 0; t < 5; t++) {
      const note = bad.sign(0, new Uint8Array(32).fill(7), 1_000 + t).note;
      expect((await witness.addCheckpoint(body(0, [], note))).status).toBe(422);
    }
    const kept = await witness.evidence();
    expect(kept.map((e) => e.kind)).toEqual(["empty-root"]);
    expect(kept[0]!.cosigned).toBeUndefined();
    expect(checkEvidence(kept[0]!, logKeys)).toBe("empty-root");
    expect(await witness.latest(ORIGIN)).toBeUndefined();
  });
});
