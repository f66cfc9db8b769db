/**
 * The monitor against real logs. A Vellum log (memory storage, the hono app over 127.0.0.1) is
 * followed from size 0 through tile edges (0 → 300 → 70,000) and resumed from saved state. A
 * tampering fetch changes one entry-bundle byte, one level-0 or level-1 tile hash, or an entry
 * together with its tile hash: each is PROOF_MISMATCH with evidence naming the resource. A split
 * view — two logs with the same key and different entries — is INCONSISTENT with evidence that
 * verifyEvidence proves from the signed checkpoints alone. Finally a static, non-Vellum log
 * (reference-vectors-300's leaves, signed with its logSkey, gzipped bundles) verifies, with and
 * without a witness policy.
 */

import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  Monitor,
  type MonitorEntry,
  type MonitorProgress,
  type MonitorState,
} from "../../src/client/monitor.js";
import { type Evidence, MonitorError, verifyEvidence } from "../../src/client/monitor-evidence.js";
import { TileReader } from "../../src/client/tiles.js";
import { base64Decode, base64Encode, hexEncode } from "../../src/core/bytes.js";
import { rootOf } from "../../src/core/compact.js";
import { sha256 } from "../../src/core/crypto.js";
import { encodeLeafAndHash } from "../../src/core/entry.js";
import { generateKey } from "../../src/core/keys.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { encodeEntryBundle, encodeHashTile } from "../../src/core/tiles.js";
import { verifyInclusion } from "../../src/core/verify.js";
import { CheckpointSigner } from "../../src/log/signer.js";
import { Tree } from "../../src/log/tree.js";
import { EntryBatch } from "../../src/storage/entry-batch.js";
import { KvLogStore } from "../../src/storage/kv-log-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { ORIGIN, SEED } from "../log/helpers.js";
import { reference300 } from "../vectors.js";
import {
  closeAll,
  fillTo,
  flipByte,
  startStaticLog,
  startVellum,
  tamperingFetch,
} from "./tlog-fixtures.js";

afterAll(closeAll);

/** Runs `f`, which must throw a MonitorError with `code`; returns its evidence. */
async function evidenceOf(f: () => Promise<unknown>, code: string): Promise<Evidence> {
  const e = await f().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(MonitorError);
  expect((e as MonitorError).code).toBe(code);
  const evidence = (e as MonitorError).evidence;
  expect(evidence.code).toBe(code);
  // Evidence survives JSON (it is written to a file and POSTed as such).
  return JSON.parse(JSON.stringify(evidence)) as Evidence;
}

const roundTrip = (s: MonitorState) => JSON.parse(JSON.stringify(s)) as MonitorState;

describe("Monitor following a Vellum log", () => {
  it("decodes both leaf versions: the submitter of version-2 entries, none for version 1", async () => {
    const v = await startVellum();
    const reader = new TileReader({
      url: v.url,
      headers: { Authorization: `Bearer ${v.tokens.read}` },
    });
    const entries: MonitorEntry[] = [];
    const monitor = new Monitor({
      reader,
      logKey: v.vkey,
      decodeLeaves: true,
      onEntry: (e) => entries.push(e),
    });
    const payload = new TextEncoder().encode('{"user":"bob","action":"login"}');
    const a = await v.log.submit(payload); // in-process, no token: version 1
    const b = await v.log.submit(payload, { submitter: "0123456789abcdef" }); // version 2
    expect(await monitor.update()).toMatchObject({ size: 2, newEntries: 2 });
    expect(entries.map((e) => e.vellum)).toEqual([
      { id: a.idText, timestamp: a.timestamp },
      { id: b.idText, timestamp: b.timestamp, submitter: "0123456789abcdef" },
    ]);
  });

  it("follows 0 → 300 → 70,000 entries over HTTP, then resumes from saved state", async () => {
    const v = await startVellum();
    const reader = new TileReader({
      url: v.url,
      headers: { Authorization: `Bearer ${v.tokens.read}` },
    });
    const entries: MonitorEntry[] = [];
    const progress: MonitorProgress[] = [];
    const monitor = new Monitor({
      reader,
      logKey: v.vkey,
      decodeLeaves: true,
      onEntry: (e) => entries.push(e),
      onProgress: (p) => progress.push(p),
    });
    const first = await monitor.update();
    expect(first).toMatchObject({ size: 0, previousSize: 0, newEntries: 0 });
    expect(first.timestamp).toBeTypeOf("number"); // Vellum's timestamp signature verified

    await fillTo(v.log, 300);
    expect(await monitor.update()).toMatchObject({ previousSize: 0, size: 300, newEntries: 300 });
    expect(entries).toHaveLength(300);
    const stored = await v.log.entries(0, 300);
    expect(entries.map((e) => e.vellum?.id)).toEqual(stored.map((e) => e.id));
    expect(entries.map((e) => e.index)).toEqual(stored.map((e) => e.index));

    await fillTo(v.log, 70_000);
    const big = await monitor.update();
    expect(big).toMatchObject({ previousSize: 300, size: 70_000, newEntries: 69_700 });
    expect(base64Encode(big.rootHash)).toBe(base64Encode(v.log.checkpoint.checkpoint.rootHash));
    expect(entries).toHaveLength(70_000);
    expect(entries[69_999]!.vellum?.id).toBe((await v.log.entry(69_999)).id);
    const last = progress[progress.length - 1]!;
    expect(last).toMatchObject({ from: 300, to: 70_000, done: 70_000, etaSeconds: 0 });
    expect(last.entriesPerSecond).toBeGreaterThan(0);
    // Nothing new: still verified, nothing fetched but the checkpoint.
    const requests = reader.stats.requests;
    expect(await monitor.update()).toMatchObject({ size: 70_000, newEntries: 0 });
    expect(reader.stats.requests).toBe(requests + 1);

    // A new process resumes from the saved state and checks the growth against it.
    const state = roundTrip(monitor.state);
    expect(state.size).toBe(70_000);
    expect(state.hashes).toHaveLength(6); // 70,000 = 65,536 + 4,096 + 256 + 64 + 32 + 16
    await fillTo(v.log, 70_300);
    const resumed = new Monitor({
      reader: new TileReader({
        url: v.url,
        fetch: v.fetch,
        headers: { Authorization: `Bearer ${v.tokens.read}` },
      }),
      logKey: v.vkey,
      state,
    });
    expect(await resumed.update()).toMatchObject({ previousSize: 70_000, size: 70_300 });

    // A saved state that does not match its own checkpoint is refused before any fetch.
    const bad = { ...state, hashes: [state.hashes[1]!, ...state.hashes.slice(1)] };
    expect(() => new Monitor({ reader, logKey: v.vkey, state: bad })).toThrow(
      expect.objectContaining({ code: "STATE_MISMATCH" }),
    );
    expect(() => new Monitor({ reader, logKey: v.vkey, state: { ...state, hashes: [] } })).toThrow(
      expect.objectContaining({ code: "MALFORMED" }),
    );
    expect(
      () => new Monitor({ reader, logKey: v.vkey, state: { ...state, checkpoint: null } }),
    ).toThrow(expect.objectContaining({ code: "STATE_MISMATCH" }));
  });

  it("refuses a checkpoint not signed by the key, and one older than the verified state", async () => {
    const v = await startVellum({ publicReads: true });
    await fillTo(v.log, 10);
    const other = await startVellum({ log: { origin: "other.example/log" } });
    const wrongKey = new Monitor({
      reader: new TileReader({ url: "http://a/", fetch: v.fetch }),
      logKey: other.vkey,
    });
    await expect(wrongKey.update()).rejects.toMatchObject({ code: "NO_KNOWN_SIGNATURE" });

    const monitor = new Monitor({
      reader: new TileReader({ url: "http://a/", fetch: v.fetch }),
      logKey: v.vkey,
    });
    await monitor.update();
    // Size 0 of the same log: older, not a contradiction, but not something to adopt.
    const older = await (await v.app.request("/v1/checkpoints/0")).text();
    const stale = new Monitor({
      reader: new TileReader({
        url: "http://a/",
        fetch: async (url, init) =>
          new URL(url).pathname === "/checkpoint" ? new Response(older) : v.fetch(url, init),
      }),
      logKey: v.vkey,
      state: monitor.state,
    });
    await expect(stale.update()).rejects.toMatchObject({ code: "STATE_MISMATCH" });
    expect(stale.size).toBe(10);
  });
});

describe("Monitor detecting tampering", () => {
  // 600 entries: bundles 000, 001 (full) and 002.p/88; level-1 tile 000.p/2.
  const SIZE = 600;

  async function tampered(change: (path: string, bytes: Uint8Array) => Uint8Array | undefined) {
    const v = await startVellum({ publicReads: true });
    await fillTo(v.log, SIZE);
    const reader = new TileReader({
      url: "http://vellum.test/",
      fetch: tamperingFetch(v.fetch, change),
    });
    return { v, monitor: new Monitor({ reader, logKey: v.vkey }) };
  }

  it("a modified entry-bundle byte: PROOF_MISMATCH naming the entry and the bundle's hash", async () => {
    let served: Uint8Array | undefined;
    const { monitor } = await tampered((path, bytes) => {
      if (path !== "tile/entries/001") return undefined;
      served = flipByte(bytes, -1); // the last byte of entry 511's payload
      return served;
    });
    const ev = await evidenceOf(() => monitor.update(), "PROOF_MISMATCH");
    expect(ev).toMatchObject({ index: 511, level: 0, previous: null, checkpoint: { size: SIZE } });
    expect(ev.resources![0]).toMatchObject({
      url: "http://vellum.test/tile/entries/001",
      sha256: hexEncode(sha256(served!)),
      length: served!.length,
    });
    expect(ev.resources![1]!.url).toBe("http://vellum.test/tile/0/001");
    expect(verifyEvidence(ev)).toMatchObject({ proven: false });
    expect(monitor.size).toBe(0); // nothing adopted
  });

  it("a modified level-0 tile hash: PROOF_MISMATCH", async () => {
    const { monitor } = await tampered((path, bytes) =>
      path === "tile/0/002.p/88" ? flipByte(bytes, 32 * 5) : undefined,
    );
    const ev = await evidenceOf(() => monitor.update(), "PROOF_MISMATCH");
    expect(ev).toMatchObject({ index: 512 + 5, level: 0 });
    expect(ev.resources![1]!.url).toBe("http://vellum.test/tile/0/002.p/88");
  });

  it("a malformed hash tile (truncated): PROOF_MISMATCH with the tile as evidence", async () => {
    const { monitor } = await tampered((path, bytes) =>
      path === "tile/1/000.p/2" ? bytes.subarray(0, 40) : undefined,
    );
    const ev = await evidenceOf(() => monitor.update(), "PROOF_MISMATCH");
    expect(ev.reason).toMatch(/is malformed/);
    expect(ev.resources?.[0]?.length).toBe(40);
  });

  it("a modified level-1 tile hash: PROOF_MISMATCH for that node", async () => {
    const { monitor } = await tampered((path, bytes) =>
      path === "tile/1/000.p/2" ? flipByte(bytes, 40) : undefined,
    );
    const ev = await evidenceOf(() => monitor.update(), "PROOF_MISMATCH");
    expect(ev).toMatchObject({ index: 1, level: 8 });
    expect(ev.resources![0]!.url).toBe("http://vellum.test/tile/1/000.p/2");
  });

  it("an entry changed together with its tile hash: the rebuilt root differs (PROOF_MISMATCH)", async () => {
    const fake = new TextEncoder().encode("not what was logged");
    const { v, monitor } = await tampered((path, bytes) => {
      if (path === "tile/entries/000") {
        return encodeEntryBundle([fake, ...decodeBundle(bytes).slice(1)]);
      }
      if (path === "tile/0/000") {
        const out = bytes.slice();
        out.set(hashLeaf(fake), 0);
        return out;
      }
      return undefined;
    });
    const ev = await evidenceOf(() => monitor.update(), "PROOF_MISMATCH");
    expect(ev.expected).toBe(base64Encode(v.log.checkpoint.checkpoint.rootHash));
    expect(ev.actual).not.toBe(ev.expected);
  });

  it("a malformed bundle is PROOF_MISMATCH too (the checkpoint says those entries exist)", async () => {
    const { monitor } = await tampered((path, bytes) =>
      path === "tile/entries/002.p/88" ? bytes.subarray(0, bytes.length - 1) : undefined,
    );
    const ev = await evidenceOf(() => monitor.update(), "PROOF_MISMATCH");
    expect(ev.resources![0]!.url).toBe("http://vellum.test/tile/entries/002.p/88");
  });

  it("a level-0 tile tampered after a verified state: caught by the consistency check first", async () => {
    let tamper = false;
    const { v, monitor } = await tampered((path, bytes) =>
      tamper && path === "tile/0/002.p/188" ? flipByte(bytes, 0) : undefined,
    );
    await monitor.update();
    await fillTo(v.log, 700);
    tamper = true;
    const ev = await evidenceOf(() => monitor.update(), "PROOF_MISMATCH");
    expect(ev.previous?.size).toBe(SIZE);
    expect(ev.checkpoint.size).toBe(700);
    expect(monitor.size).toBe(SIZE);
  });
});

function decodeBundle(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = bytes[at]! * 256 + bytes[at + 1]!;
    out.push(bytes.slice(at + 2, at + 2 + n));
    at += 2 + n;
  }
  return out;
}

describe("Monitor detecting a split view", () => {
  /** Log A (300 entries) and B (same key and origin, other entries, `sizeB` of them). */
  async function splitView(sizeB: number) {
    const a = await startVellum({ publicReads: true });
    const b = await startVellum({ publicReads: true });
    expect(b.vkey).toBe(a.vkey);
    await fillTo(a.log, 300, "view A");
    await fillTo(b.log, sizeB, "view B");
    const sawA = new Monitor({
      reader: new TileReader({ url: "http://a/", fetch: a.fetch }),
      logKey: a.vkey,
    });
    await sawA.update();
    const state = roundTrip(sawA.state);
    const atB = new Monitor({
      reader: new TileReader({ url: "http://b/", fetch: b.fetch }),
      logKey: a.vkey,
      state,
    });
    return { a, b, atB };
  }

  it("a larger tree that does not extend the one seen: INCONSISTENT, proven by the evidence", async () => {
    const { a, b, atB } = await splitView(500);
    const ev = await evidenceOf(() => atB.update(), "INCONSISTENT");
    expect(ev.previous?.note).toBe(a.log.checkpoint.note);
    expect(ev.checkpoint.note).toBe(b.log.checkpoint.note);
    expect(ev.consistency).toMatchObject({ from: 300, to: 500 });
    expect(ev.url).toBe("http://b/");
    const check = verifyEvidence(ev, a.vkey);
    expect(check.proven).toBe(true);
    expect(atB.size).toBe(300);

    // Evidence that was altered no longer proves anything.
    const forged = { ...ev, consistency: { ...ev.consistency!, oldRoot: ev.previous!.rootHash } };
    expect(() => verifyEvidence(forged, a.vkey)).toThrow(
      expect.objectContaining({ code: "PROOF_MISMATCH" }),
    );
    const otherKey = (await startVellum({ log: { origin: "x.example/log" } })).vkey;
    expect(() => verifyEvidence(ev, otherKey)).toThrow(
      expect.objectContaining({ code: "NO_KNOWN_SIGNATURE" }),
    );
  });

  it("two roots for the same size: INCONSISTENT", async () => {
    const { atB } = await splitView(300);
    const ev = await evidenceOf(() => atB.update(), "INCONSISTENT");
    expect(ev.previous?.size).toBe(300);
    expect(ev.checkpoint.size).toBe(300);
    expect(ev.consistency).toBeUndefined();
    expect(verifyEvidence(ev)).toMatchObject({ proven: true });
  });

  it("a smaller tree whose log no longer serves the seen tree's tiles: STATE_MISMATCH, not adopted", async () => {
    const { atB } = await splitView(200);
    await expect(atB.update()).rejects.toMatchObject({
      code: "STATE_MISMATCH",
      message: expect.stringMatching(/no longer serves that tree's tiles/),
    });
    expect(atB.size).toBe(300);
  });

  it("a smaller checkpoint of another history, next to the seen tree's tiles: INCONSISTENT, proven", async () => {
    const { a, b } = await splitView(200);
    const sawA = new Monitor({
      reader: new TileReader({ url: "http://a/", fetch: a.fetch }),
      logKey: a.vkey,
    });
    await sawA.update();
    // One server that shows B's checkpoint but still serves A's tiles.
    const mixed = new Monitor({
      reader: new TileReader({
        url: "http://a/",
        fetch: async (url, init) =>
          new URL(url).pathname === "/checkpoint"
            ? new Response(b.log.checkpoint.note)
            : a.fetch(url, init),
      }),
      logKey: a.vkey,
      state: roundTrip(sawA.state),
    });
    const ev = await evidenceOf(() => mixed.update(), "INCONSISTENT");
    expect(ev.previous?.size).toBe(300);
    expect(ev.checkpoint.size).toBe(200);
    expect(ev.consistency).toMatchObject({ from: 200, to: 300 });
    expect(verifyEvidence(ev, a.vkey)).toMatchObject({ proven: true });
    expect(mixed.size).toBe(300);
    // Altered evidence proves nothing.
    const forged = { ...ev, consistency: { ...ev.consistency!, oldRoot: ev.checkpoint.rootHash } };
    expect(() => verifyEvidence(forged, a.vkey)).toThrow(
      expect.objectContaining({ code: "PROOF_MISMATCH" }),
    );
  });

  it("an older checkpoint of the same tree: STATE_MISMATCH saying it is consistent", async () => {
    const a = await startVellum({ publicReads: true });
    await fillTo(a.log, 200, "stale");
    const older = a.log.checkpoint.note;
    await fillTo(a.log, 300, "stale");
    const monitor = new Monitor({
      reader: new TileReader({ url: "http://a/", fetch: a.fetch }),
      logKey: a.vkey,
    });
    await monitor.update();
    const stale = new Monitor({
      reader: new TileReader({
        url: "http://a/",
        fetch: async (url, init) =>
          new URL(url).pathname === "/checkpoint" ? new Response(older) : a.fetch(url, init),
      }),
      logKey: a.vkey,
      state: roundTrip(monitor.state),
    });
    await expect(stale.update()).rejects.toMatchObject({
      code: "STATE_MISMATCH",
      message: expect.stringMatching(/consistent with it: a stale cache or a rollback, not a fork/),
    });
    expect(stale.size).toBe(300);
  });
});

describe("Monitor on a static, non-Vellum tlog-tiles log", () => {
  const vectors = reference300();
  const { origin, logSkey, logVkey, cosignerVkey } = vectors.checkpoints as unknown as {
    origin: string;
    logSkey: string;
    logVkey: string;
    cosignerVkey: string;
  };
  const leaves = vectors.leaves.map((l) => base64Decode(l));
  const noteAt = (kind: "signed" | "cosigned", size: number) =>
    (vectors.checkpoints as unknown as Record<string, { treeSize: number; note: string }[]>)[
      kind
    ]!.find((c) => c.treeSize === size)!.note;

  it("verifies reference-vectors-300 served as files: 256, then 300, entries opaque", async () => {
    const log = await startStaticLog();
    const entries: MonitorEntry[] = [];
    const reader = new TileReader({ url: log.url });
    const monitor = new Monitor({
      reader,
      logKey: logVkey,
      decodeLeaves: true,
      onEntry: (e) => entries.push(e),
    });
    log.grow(leaves.slice(0, 256));
    const signed256 = log.sign(logSkey, origin);
    expect(signed256).toBe(noteAt("signed", 256)); // Ed25519 is deterministic
    log.publish(signed256);
    expect(await monitor.update()).toMatchObject({ size: 256, newEntries: 256 });
    expect((await monitor.update()).timestamp).toBeUndefined();

    log.grow(leaves.slice(256));
    log.publish(log.sign(logSkey, origin));
    expect(await monitor.update()).toMatchObject({ previousSize: 256, size: 300 });
    expect(entries.map((e) => base64Encode(e.data))).toEqual(vectors.leaves);
    expect(entries.every((e) => e.vellum === undefined)).toBe(true); // opaque, not Vellum leaves
    expect(entries.map((e) => base64Encode(e.leafHash))).toEqual(vectors.leafHashes);
    // Entry bundles came gzipped; fetch decoded them.
    expect(log.requests.some((r) => r.gzip && r.path.startsWith("tile/entries/"))).toBe(true);
  });

  it("with a tlog-policy, needs the witness quorum", async () => {
    const log = await startStaticLog();
    log.grow(leaves);
    const policy = `log ${logVkey}\nwitness w1 ${cosignerVkey}\nquorum w1\n`;
    log.publish(noteAt("signed", 300));
    const strict = new Monitor({
      reader: new TileReader({ url: log.url }),
      logKey: logVkey,
      policy,
    });
    await expect(strict.update()).rejects.toMatchObject({ code: "QUORUM_NOT_MET" });
    log.publish(noteAt("cosigned", 300));
    expect(await strict.update()).toMatchObject({ size: 300 });
    // A policy that does not list the monitored log's key is refused up front.
    const otherLog = generateKey("other.example/log", new Uint8Array(32).fill(1)).verifierKey;
    expect(
      () =>
        new Monitor({
          reader: new TileReader({ url: log.url }),
          logKey: logVkey,
          policy: `log ${otherLog}\nquorum none\n`,
        }),
    ).toThrow(expect.objectContaining({ code: "BAD_KEY" }));
  });

  it("copes with a host that dropped superseded partial tiles, and catches a forged tile", async () => {
    const log = await startStaticLog();
    log.grow(leaves.slice(0, 100));
    log.publish(log.sign(logSkey, origin));
    const reader = new TileReader({ url: log.url });
    const monitor = new Monitor({ reader, logKey: logVkey });
    await monitor.update();
    log.grow(leaves.slice(100));
    log.publish(log.sign(logSkey, origin));
    rmSync(join(log.dir, "tile/0/000.p/100"));
    rmSync(join(log.dir, "tile/entries/000.p/100"));
    expect(await monitor.update()).toMatchObject({ previousSize: 100, size: 300 });
    // A proof for the old size reads the full tile instead of the dropped partial one.
    const proof = await new TileReader({ url: log.url }).inclusionProof(7, 100);
    const root100 = rootOf(log.leafHashes.slice(0, 100));
    verifyInclusion(7, 100, log.leafHashes[7]!, proof, root100);

    const forged = await startStaticLog();
    forged.grow(leaves);
    forged.publish(forged.sign(logSkey, origin));
    writeFileSync(
      join(forged.dir, "tile/0/001.p/44"),
      encodeHashTile(Array.from({ length: 44 }, () => new Uint8Array(32))),
    );
    const victim = new Monitor({ reader: new TileReader({ url: forged.url }), logKey: logVkey });
    const ev = await evidenceOf(() => victim.update(), "PROOF_MISMATCH");
    expect(ev).toMatchObject({ index: 256, level: 0 });
  });
});

describe("Monitor: time order of a Vellum log", () => {
  /** A consistent, signed log whose entry 2 is older than entry 1: built by hand (a broken log). */
  async function brokenStore() {
    const store = new KvLogStore(new MemoryDatabase().namespace("log"));
    const signer = new CheckpointSigner(ORIGIN, SEED);
    const tree = await Tree.load((l, i) => store.stratum(l, i), 0, []);
    await store.create("key", signer.sign(0, tree.root(), 1).note);
    const stamps = [1_764_748_800_000, 1_764_748_801_000, 1_764_748_799_000];
    const ids = stamps.map((_, n) => new Uint8Array(16).fill(n + 1));
    const leaves = stamps.map((timestamp, i) =>
      encodeLeafAndHash({
        id: ids[i]!,
        timestamp,
        submitter: undefined,
        payload: new TextEncoder().encode(`e${i}`),
      }),
    );
    const strata = tree.append(leaves.map((l) => l.leafHash));
    await store.commit({
      entries: EntryBatch.of(
        leaves.map((l, i) => ({
          index: i,
          leaf: l.leaf,
          id: ids[i]!,
          leafHash: l.leafHash,
        })),
      ),
      keyAliases: [],
      strata,
      state: { size: 3, compact: tree.compactHashes() },
      checkpoint: { size: 3, note: signer.sign(3, tree.root(), 2).note },
    });
    return store;
  }

  it("catches an entry older than the one before it, with evidence, once the tree verifies", async () => {
    const v = await startVellum({ log: { store: await brokenStore() } });
    const reader = new TileReader({
      url: v.url,
      headers: { Authorization: `Bearer ${v.tokens.read}` },
    });
    const monitor = new Monitor({ reader, logKey: v.vkey });
    const evidence = await evidenceOf(() => monitor.update(), "INCONSISTENT");
    expect(evidence.index).toBe(2);
    expect(evidence.reason).toMatch(
      /^entry 2 has timestamp 1764748799000, before entry 1's 1764748801000/,
    );
    // Turned off, the same log verifies (a monitor of logs that are not Vellum's has no such rule).
    const lenient = new Monitor({ reader, logKey: v.vkey, checkTimeOrder: false });
    expect(await lenient.update()).toMatchObject({ size: 3 });
  });

  it("keeps the last timestamp in its state and checks across updates", async () => {
    const v = await startVellum();
    const reader = new TileReader({
      url: v.url,
      headers: { Authorization: `Bearer ${v.tokens.read}` },
    });
    const first = new Monitor({ reader, logKey: v.vkey });
    const r = await v.log.submit(new TextEncoder().encode("one"));
    await first.update();
    expect(first.state.lastTimestamp).toBe(r.timestamp);
    const resumed = new Monitor({ reader, logKey: v.vkey, state: roundTrip(first.state) });
    await v.log.submit(new TextEncoder().encode("two"));
    expect(await resumed.update()).toMatchObject({ size: 2 });
  });
});
