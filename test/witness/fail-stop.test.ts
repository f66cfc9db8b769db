/**
 * Fail-stop in the witness, with the memory driver's fault hooks: after a failed write (ENOSPC
 * thrown by the disk, "fail", "persist-then-fail") the witness answers no 200 (no cosignature, no
 * cosigned checkpoint) until the store has been reopened and its state re-read; reopening is
 * retried while it fails; every failure is logged with its cause and counted; `/readyz` is 503
 * meanwhile. After recovery, and after a restart, it still refuses anything inconsistent with what
 * it durably cosigned. A request whose own write resolved while another failed is not answered 200.
 */
import { describe, expect, it } from "vitest";
import { base64Encode, hexEncode } from "../../src/core/bytes.js";
import { sha256 } from "../../src/core/crypto.js";
import { VellumError } from "../../src/core/errors.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { EMPTY_ROOT } from "../../src/core/rfc6962.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { MemoryDatabase, type WriteFault } from "../../src/storage/memory.js";
import type { KeyValueStore } from "../../src/storage/types.js";
import { createWitnessApp } from "../../src/witness/app.js";
import { Witness } from "../../src/witness/witness.js";
import { ORIGIN, openMemoryLog, payloadOf, SEED } from "../log/helpers.js";

const OTHER = "other.test/log";
const other = new CheckpointSigner(OTHER, new Uint8Array(32).fill(3));
const body = (old: number, proof: Uint8Array[], note: string) =>
  `old ${old}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${note}`;
const enospc = (): WriteFault => {
  throw Object.assign(new Error("No space left on device"), { code: "ENOSPC" });
};

async function until(what: string, predicate: () => Promise<boolean> | boolean, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A witness over a memory database whose store can be kept from reopening (`reopens = false`:
 * as LevelDB failing to reopen on a full disk), with its log lines captured.
 */
async function setup(db = new MemoryDatabase()) {
  const { log } = await openMemoryLog();
  const inner = db.namespace("witness");
  const gate = { reopens: true, attempts: 0 };
  const kv: KeyValueStore = {
    get: (k) => inner.get(k),
    getMany: (k) => inner.getMany(k),
    range: (o) => inner.range(o),
    write: (ops) => inner.write(ops),
    close: () => inner.close(),
    recover: async () => {
      gate.attempts++;
      if (!gate.reopens) {
        throw new VellumError("STORAGE_FAILURE", "disk full (ENOSPC): reopening the database", {
          cause: Object.assign(new Error("No space left on device"), { code: "ENOSPC" }),
        });
      }
      await inner.recover();
    },
  };
  const lines: string[] = [];
  const witness = new Witness({
    name: "witness.test/w1",
    seed: new Uint8Array(32).fill(77),
    kv,
    trusted: new Map([
      [ORIGIN, [verifierFromKey(log.signer.verifierKey)]],
      [OTHER, [verifierFromKey(other.verifierKey)]],
    ]),
    recoverBackoffMs: [5, 20],
    logger: {
      debug: () => {},
      info: (a: unknown, b?: string) => void lines.push(b ?? String(a)),
      warn: (a: unknown, b?: string) => void lines.push(b ?? String(a)),
      error: (a: unknown, b?: string) => void lines.push(b ?? String(a)),
    },
  });
  const app = createWitnessApp(witness);
  const grow = async (n: number) => {
    for (let i = 0; i < n; i++) await log.submit(payloadOf(log.size));
    return log.checkpoint.note;
  };
  const post = (text: string) => app.request("/add-checkpoint", { method: "POST", body: text });
  const extend = async (old: number, note = log.checkpoint.note) =>
    post(body(old, await log.consistencyProof(old, log.size), note));
  const ready = async () => (await app.request("/readyz")).status === 200;
  const hash = hexEncode(sha256(new TextEncoder().encode(ORIGIN)));
  const cosigned = () => app.request(`/${hash}/checkpoint`);
  return { log, db, witness, app, gate, lines, grow, post, extend, ready, cosigned };
}

describe("witness fail-stop", () => {
  it("answers 503 naming the failure and no 200 until the store is reopened and re-read", async () => {
    const w = await setup();
    const at4 = await w.grow(4);
    expect((await w.post(body(0, [], at4))).status).toBe(200);
    await w.grow(4);

    w.gate.reopens = false;
    w.db.faults = { write: enospc };
    const failed = await w.extend(4);
    expect(failed.status).toBe(503);
    expect(failed.headers.get("Content-Type")).toMatch(/^text\/plain/);
    const text = await failed.text();
    expect(text).toMatch(/disk full \(ENOSPC\)/);
    expect(text.trim().split("\n")).toHaveLength(1);
    const readyz = await w.app.request("/readyz");
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({ status: "failed", storage: "disk full (ENOSPC)" });

    // The disk has room again, but the store has not been reopened: still nothing answered 200,
    // not the honest extension, not the idempotent re-send, not the cosigned checkpoint.
    w.db.faults = {};
    const statuses = new Set<number>();
    for (let i = 0; i < 10; i++) {
      statuses.add((await w.extend(4)).status);
      statuses.add((await w.post(body(4, [], at4))).status);
      statuses.add((await w.cosigned()).status);
    }
    await until("three attempts to reopen", () => w.gate.attempts >= 3);
    statuses.add((await w.extend(4)).status);
    expect([...statuses]).toEqual([503]);
    const metrics = await (await w.app.request("/metrics")).text();
    expect(metrics).toMatch(/^vellum_witness_storage_failing 1$/m);
    expect(metrics).toMatch(/^vellum_witness_storage_write_failures_total 1$/m);

    w.gate.reopens = true;
    await until("ready again", w.ready);
    expect(w.lines[0]).toMatch(/storage write failed \(disk full \(ENOSPC\)\): .*No space left/);
    expect(w.lines.some((l) => /reopening the store failed \(disk full \(ENOSPC\)\)/.test(l))).toBe(
      true,
    );
    expect(w.lines.at(-1)).toMatch(/store reopened and state re-read .*cosigning again/);

    // What was durably cosigned (4) still binds the witness; the honest extension now succeeds
    // and a second root for its size is refused.
    expect((await w.witness.latest(ORIGIN))?.size).toBe(4);
    expect((await w.extend(4)).status).toBe(200);
    const fork = new CheckpointSigner(ORIGIN, SEED).sign(8, new Uint8Array(32).fill(9), 1).note;
    expect((await w.post(body(8, [], fork))).status).toBe(409);
  });

  it("persist-then-fail: the unacknowledged state binds it after recovery and after a restart", async () => {
    const w = await setup();
    expect((await w.post(body(0, [], await w.grow(4)))).status).toBe(200);
    const at8 = await w.grow(4);
    let armed = true;
    w.db.faults = {
      write: () => {
        if (!armed) return "ok";
        armed = false;
        return "persist-then-fail";
      },
    };
    expect((await w.extend(4)).status).toBe(503);
    expect((await w.post(body(4, [], await w.grow(0)))).status).toBe(503);
    await until("ready again", w.ready);
    // Size 8 was stored though never acknowledged: the witness holds to it.
    expect((await w.witness.latest(ORIGIN))?.size).toBe(8);
    const fork = new CheckpointSigner(ORIGIN, SEED).sign(8, new Uint8Array(32).fill(9), 1).note;
    expect((await w.post(body(8, [], fork))).status).toBe(409);
    const stale = await w.extend(4);
    expect(stale.status).toBe(409);
    expect(await stale.text()).toBe("8\n");
    expect((await w.post(body(8, [], at8))).status).toBe(200);

    // A restart on exactly what was applied: the same, and the fork is still refused.
    const again = await setup(w.db.simulateRestart());
    expect((await again.witness.latest(ORIGIN))?.size).toBe(8);
    expect((await again.post(body(8, [], fork))).status).toBe(409);
  });

  it("answers 503 to every request queued behind a failed write, and to one whose write landed meanwhile", async () => {
    const w = await setup();
    expect((await w.post(body(0, [], await w.grow(4)))).status).toBe(200);
    const at4 = w.log.checkpoint.note;
    await w.grow(4);
    let releaseOther: (v: WriteFault) => void = () => {};
    let n = 0;
    w.gate.reopens = false;
    w.db.faults = {
      write: (_ns, _ops, _seq) => {
        n++;
        // 1st: the other log's first cosignature, held until ORIGIN's write has failed.
        if (n === 1) return new Promise<WriteFault>((resolve) => (releaseOther = resolve));
        return enospc();
      },
    };
    const otherNote = other.sign(0, EMPTY_ROOT, 1).note;
    const otherAnswer = w.post(body(0, [], otherNote));
    await until("the other log's write to be held", () => n === 1);
    const queued = [w.extend(4), ...Array.from({ length: 5 }, () => w.post(body(4, [], at4)))];
    const results = await Promise.all(queued);
    expect(results.map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 503]);
    releaseOther("ok"); // its write lands after the failure: durable, but not acknowledged
    expect((await otherAnswer).status).toBe(503);
    w.db.faults = {};
    w.gate.reopens = true;
    await until("ready again", w.ready);
    expect((await w.witness.latest(OTHER))?.size).toBe(0);
    expect((await w.witness.latest(ORIGIN))?.size).toBe(4);
  });

  it("answers 503 while reads fail, without stopping", async () => {
    const w = await setup();
    const at4 = await w.grow(4);
    w.db.faults = { read: () => "fail" };
    const res = await w.post(body(0, [], at4));
    expect(res.status).toBe(503);
    expect(await w.ready()).toBe(true);
    expect(w.lines).toHaveLength(1);
    expect(w.lines[0]).toMatch(/storage read failed/);
    w.db.faults = {};
    expect((await w.post(body(0, [], at4))).status).toBe(200);
  });
});
