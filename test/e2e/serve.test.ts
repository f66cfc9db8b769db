/**
 * End to end: the real `vellum serve` (bin/vellum.js over the built dist/, as `npm test` builds
 * it) runs as a child process on 127.0.0.1 with a temporary data directory, and everything it
 * answers is checked with the verifier library alone and the key from DATA/log.vkey: receipts
 * (C2SP tlog-proof, leaf rebuilt from payload + extra), inclusion and consistency proofs against
 * signed checkpoints, and tiles against a tree rebuilt here from the entries. Then the lifecycle:
 * SIGTERM drains an in-flight request and signs a final checkpoint, a restart resumes the same
 * tree, and a second server on the same data directory refuses to start (LOCKED).
 *
 * The whole suite runs twice, through the same tests: on the embedded LevelDB in DATA/db (the
 * default), and with `--store postgres://…` (spec/storage.md, PostgreSQL) against a real
 * PostgreSQL (`scripts/services.sh up postgres`; skipped locally without it, required under CI),
 * each with its own data directory and, there, an origin of its own: a fresh set of schemas in
 * the shared test database.
 *
 * The core verifier runs with its default (portable, @noble) crypto, so this also checks that
 * what the server signs with node:crypto verifies in the browser-safe library.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { base64Decode, base64Encode, bytesEqual, utf8Encode } from "../../src/core/bytes.js";
import { type Checkpoint, openCheckpoint } from "../../src/core/checkpoint.js";
import { rootOf } from "../../src/core/compact.js";
import { cosignatureVerifierFromKey } from "../../src/core/cosignature.js";
import { decodeLeaf, decodeLeafFields, formatUuid, leafFromFields } from "../../src/core/entry.js";
import { type NoteVerifier, verifierFromKey } from "../../src/core/keys.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import {
  appendHashTiles,
  encodeEntryBundle,
  formatTilePath,
  partialTileWidth,
  TILE_WIDTH,
  tilesForSize,
} from "../../src/core/tiles.js";
import { parseTlogProof, verifyTlogProof } from "../../src/core/tlog-proof.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import { REPO_ROOT } from "../helpers/cli.js";
import { spawnVellum, startVellum, type VellumProcess } from "../helpers/processes.js";
import { needService } from "../helpers/services.js";
import type { EntryJson, ReceiptJson } from "../server/helpers.js";

const HOST = "127.0.0.1";
const START_TIMEOUT_MS = 10_000;

// ---- the child process ------------------------------------------------------------------------

type Server = VellumProcess;

/** Where the log is kept: what a suite adds to every `vellum serve` it starts. */
interface Backend {
  /** For the temporary data directory's name. */
  readonly name: string;
  /** Added to the arguments of every server of the suite (the same log each time). */
  readonly args: readonly string[];
  /** What the server says, at start, about where it keeps its state. */
  readonly stateIn: RegExp;
}

const serveArgs = (dataDir: string, backend: Backend) => [
  "serve",
  ...["--data", dataDir, "--port", "0", "--host", HOST],
  ...backend.args,
];
/** Spawns `vellum serve` on a port the OS picks, without waiting for it. */
const spawnServe = (dataDir: string, backend: Backend) => spawnVellum(serveArgs(dataDir, backend));
/** Starts the server and waits for its printed URL and for /readyz to answer 200. */
const startServer = (dataDir: string, backend: Backend) =>
  startVellum(serveArgs(dataDir, backend), "/readyz", START_TIMEOUT_MS);

/** Resolves once `predicate` holds, polling; fails after `ms` with `what` and the output. */
async function until(predicate: () => boolean | Promise<boolean>, ms: number, what: () => string) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const b64 = (text: string) => base64Decode(text);
const payload = (i: number, tag = "e2e") => utf8Encode(`${tag} entry ${i} ${"x".repeat(i % 40)}`);

// ---- the suite, once per backend ---------------------------------------------------------------

function endToEnd(backend: Backend): void {
  // ---- HTTP helpers ------------------------------------------------------------------------------

  let server: Server;
  let token = "";
  const auth = () => ({ Authorization: `Bearer ${token}` });

  async function getJson<T>(path: string, headers: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${server.url}${path}`, { headers });
    const text = await res.text();
    expect(res.status, `GET ${path}: ${text}`).toBe(200);
    return JSON.parse(text) as T;
  }

  async function getBytes(path: string): Promise<{ status: number; bytes: Uint8Array }> {
    const res = await fetch(`${server.url}${path}`, { headers: auth() });
    return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
  }

  async function submit(payload: Uint8Array): Promise<{ status: number; body: ReceiptJson }> {
    const res = await fetch(`${server.url}/v1/entries`, {
      method: "POST",
      headers: { ...auth(), "Content-Type": "application/octet-stream" },
      body: payload,
    });
    return { status: res.status, body: (await res.json()) as ReceiptJson };
  }

  async function submitBatch(payloads: Uint8Array[]) {
    const res = await fetch(`${server.url}/v1/entries/batch`, {
      method: "POST",
      headers: { ...auth(), "Content-Type": "application/json" },
      body: JSON.stringify({ entries: payloads.map((p) => ({ payload: base64Encode(p) })) }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return (JSON.parse(text) as { results: (ReceiptJson & { status: number })[] }).results;
  }

  async function latestCheckpoint(): Promise<{ note: string; checkpoint: Checkpoint }> {
    const res = await fetch(`${server.url}/checkpoint`);
    expect(res.status).toBe(200);
    const note = await res.text();
    return { note, checkpoint: openCheckpoint(note, verifier).checkpoint };
  }

  /**
   * POSTs one entry with `Expect: 100-continue`: the server has parsed the headers and taken the
   * request once it answers "100 Continue". Then `between()` runs (here: SIGTERM), and only then is
   * the body sent. Resolves with the final response.
   */
  function submitAcross(
    payload: Uint8Array,
    between: () => Promise<void>,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(`${server.url}/v1/entries`, {
        method: "POST",
        agent: false,
        headers: {
          ...auth(),
          "Content-Type": "application/octet-stream",
          "Content-Length": String(payload.length),
          Expect: "100-continue",
          Connection: "close",
        },
      });
      req.on("continue", () => {
        between().then(() => req.end(payload), reject);
      });
      req.on("response", (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (s: string) => {
          body += s;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.flushHeaders();
    });
  }

  // ---- checks ------------------------------------------------------------------------------------

  let verifier: NoteVerifier;
  const payloadOf = new Map<number, Uint8Array>(); // index -> payload
  const receipts: ReceiptJson[] = [];

  /** Verifies a receipt offline: leaf rebuilt from payload + extra, log signature, inclusion. */
  function checkReceipt(r: ReceiptJson, payload: Uint8Array): void {
    const parsed = parseTlogProof(r.receipt);
    expect(parsed.extra).toBeDefined();
    const leaf = leafFromFields(parsed.extra!, payload);
    const leafHash = hashLeaf(leaf);
    expect(base64Encode(leafHash)).toBe(r.leafHash);
    const fields = decodeLeafFields(parsed.extra!);
    expect(formatUuid(fields.id)).toBe(r.id);
    expect(fields.timestamp).toBe(r.timestamp);
    const verified = verifyTlogProof(r.receipt, leafHash, verifier);
    expect(verified.index).toBe(r.index);
    expect(verified.checkpoint.size).toBe(r.treeSize);
    expect(parsed.checkpoint).toBe(r.checkpoint);
    expect(r.index).toBeLessThan(r.treeSize);
  }

  // ---- the tests -------------------------------------------------------------------------------

  let dataDir = "";

  afterAll(async () => {
    await server?.kill();
    if (dataDir !== "") rmSync(dataDir, { recursive: true, force: true });
  });

  beforeAll(async () => {
    if (!existsSync(join(REPO_ROOT, "dist", "cli", "main.js"))) {
      throw new Error("dist/ is missing: run `npm run build` first (`npm test` does)");
    }
    dataDir = mkdtempSync(join(tmpdir(), `vellum-e2e-${backend.name}-`));
    server = await startServer(dataDir, backend);
    token = readFileSync(join(dataDir, "admin.token"), "utf8").trim();
    verifier = verifierFromKey(readFileSync(join(dataDir, "log.vkey"), "utf8").trim());
  });

  /** The first batch's checkpoint (an older tree to prove consistency from). */
  let early: { size: number; root: Uint8Array };
  /** Everything sequenced before the restart. */
  let before: { note: string; checkpoint: Checkpoint };
  let leafHashes: Uint8Array[] = [];
  /** DATA/checkpoint after the SIGTERM. */
  let finalNote = "";

  it("starts with an empty, signed log and its keys on disk", async () => {
    expect(server.stdout()).toMatch(/created an admin token/);
    expect(server.stdout()).toMatch(backend.stateIn);
    const info = await getJson<{ verifierKey: string; treeSize: number; origin: string }>(
      "/v1/log",
    );
    expect(`${info.verifierKey}\n`).toBe(readFileSync(join(dataDir, "log.vkey"), "utf8"));
    expect(info.treeSize).toBe(0);
    const { checkpoint } = await latestCheckpoint();
    expect(checkpoint.size).toBe(0);
    expect(checkpoint.origin).toBe(info.origin);
  });

  it("refuses submissions without a valid token", async () => {
    const res = await fetch(`${server.url}/v1/entries`, { method: "POST", body: "x" });
    expect(res.status).toBe(401);
    const bad = await fetch(`${server.url}/v1/entries`, {
      method: "POST",
      body: "x",
      headers: { Authorization: "Bearer nope" },
    });
    expect(bad.status).toBe(401);
  });

  it("acknowledges single and batch submissions with receipts that verify offline", async () => {
    // Singles, some concurrent (they may share a sequencer batch).
    const singles = await Promise.all([0, 1, 2, 3, 4].map((i) => submit(payload(i))));
    for (const [i, r] of singles.entries()) {
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.duplicate).toBe(false);
      payloadOf.set(r.body.index, payload(i));
      receipts.push(r.body);
    }
    const first = singles.map((s) => s.body).sort((a, b) => b.treeSize - a.treeSize)[0]!;
    early = {
      size: first.treeSize,
      root: openCheckpoint(first.checkpoint, verifier).checkpoint.rootHash,
    };

    // Batches: 300 then 200 entries, past the first full tile (256) into a partial one.
    for (const [from, to] of [
      [5, 305],
      [305, 505],
    ] as const) {
      const ps = Array.from({ length: to - from }, (_, k) => payload(from + k));
      const results = await submitBatch(ps);
      expect(results).toHaveLength(ps.length);
      for (const [k, r] of results.entries()) {
        expect(r.status, JSON.stringify(r)).toBe(201);
        expect(r.duplicate).toBe(false);
        payloadOf.set(r.index, ps[k]!);
        receipts.push(r);
      }
    }

    // Indices are exactly 0..504, each once; ids are unique.
    const indices = receipts.map((r) => r.index).sort((a, b) => a - b);
    expect(indices).toEqual(Array.from({ length: 505 }, (_, i) => i));
    expect(new Set(receipts.map((r) => r.id)).size).toBe(505);

    for (const r of receipts) checkReceipt(r, payloadOf.get(r.index)!);

    // Every receipt names the token that submitted it (the admin token here); dedup by key and
    // the submitter have their own end-to-end tests (test/e2e/dedup.test.ts).
    expect(new Set(receipts.map((r) => r.submitter)).size).toBe(1);
    expect(receipts[0]!.submitter).toMatch(/^[0-9a-f]{16}$/);
  });

  it("reads every entry back by index and by id, and refuses reads without a token", async () => {
    const unauth = await fetch(`${server.url}/v1/entries/0`);
    expect(unauth.status).toBe(401);
    const byIndex = await Promise.all(
      receipts.map((r) => getJson<EntryJson>(`/v1/entries/${r.index}`, auth())),
    );
    const byId = await Promise.all(
      receipts.map((r) => getJson<EntryJson>(`/v1/entries/by-id/${r.id}`, auth())),
    );
    for (const [k, r] of receipts.entries()) {
      const want: EntryJson = {
        index: r.index,
        id: r.id,
        timestamp: r.timestamp,
        submitter: r.submitter,
        leafHash: r.leafHash,
        payload: base64Encode(payloadOf.get(r.index)!),
      };
      expect(byIndex[k]).toEqual(want);
      expect(byId[k]).toEqual(want);
    }
    const page = await getJson<{ entries: EntryJson[]; next: number | null }>(
      "/v1/entries?start=500&limit=10",
      auth(),
    );
    expect(page.entries.map((e) => e.index)).toEqual([500, 501, 502, 503, 504]);
    expect(page.next).toBeNull();
    const missing = await fetch(`${server.url}/v1/entries/505`, { headers: auth() });
    expect(missing.status).toBe(404);
  });

  it("serves inclusion and consistency proofs that verify against signed checkpoints", async () => {
    before = await latestCheckpoint();
    const { size, rootHash } = before.checkpoint;
    expect(size).toBe(505);
    leafHashes = Array.from({ length: size }, (_, i) =>
      base64Decode(receipts.find((r) => r.index === i)!.leafHash),
    );
    expect(bytesEqual(rootOf(leafHashes), rootHash)).toBe(true);

    const proofs = await Promise.all(
      leafHashes.map((_, i) =>
        getJson<{ index: number; treeSize: number; proof: string[] }>(
          `/v1/proofs/inclusion?index=${i}&size=${size}`,
        ),
      ),
    );
    for (const [i, p] of proofs.entries()) {
      expect(p.index).toBe(i);
      expect(p.treeSize).toBe(size);
      verifyInclusion(i, size, leafHashes[i]!, p.proof.map(b64), rootHash);
    }
    // By leaf hash (URL-safe base64), against the older, smaller tree.
    const urlSafe = base64Encode(leafHashes[1]!).replace(/\+/g, "-").replace(/\//g, "_");
    const old = await getJson<{ index: number; proof: string[] }>(
      `/v1/proofs/inclusion?leafHash=${urlSafe}&size=${early.size}`,
    );
    expect(old.index).toBe(1);
    verifyInclusion(1, early.size, leafHashes[1]!, old.proof.map(b64), early.root);

    const c = await getJson<{ from: number; to: number; proof: string[] }>(
      `/v1/proofs/consistency?from=${early.size}&to=${size}`,
    );
    verifyConsistency(early.size, size, c.proof.map(b64), early.root, rootHash);
    // The older checkpoint is still served and is the one the early receipt holds.
    const res = await fetch(`${server.url}/v1/checkpoints/${early.size}`);
    expect(res.status).toBe(200);
    const oldNote = openCheckpoint(await res.text(), verifier).checkpoint;
    expect(bytesEqual(oldNote.rootHash, early.root)).toBe(true);

    // Proofs beyond the published tree are refused.
    const beyond = await fetch(`${server.url}/v1/proofs/inclusion?index=0&size=${size + 1}`);
    expect(beyond.status).toBeGreaterThanOrEqual(400);
  });

  it("serves hash tiles and entry bundles equal to a tree rebuilt from the entries", async () => {
    const size = before.checkpoint.size;
    const built = appendHashTiles(
      0,
      () => {
        throw new Error("no partial tiles in an empty tree");
      },
      leafHashes,
    );
    const bundles = [...tilesForSize(size)].filter((t) => t.level === "entries");
    // 505 entries: tile 0/000 (full), 0/001.p/249, 1/000.p/1; bundles 000 and 001.p/249.
    expect(built.map((t) => formatTilePath(t.tile))).toEqual([
      "tile/0/000",
      "tile/0/001.p/249",
      "tile/1/000.p/1",
    ]);
    expect(bundles.map(formatTilePath)).toEqual(["tile/entries/000", "tile/entries/001.p/249"]);
    for (const { tile, data } of built) {
      const got = await getBytes(`/${formatTilePath(tile)}`);
      expect(got.status, formatTilePath(tile)).toBe(200);
      expect(bytesEqual(got.bytes, data), formatTilePath(tile)).toBe(true);
    }
    for (const tile of bundles) {
      const leaves = Array.from({ length: tile.width }, (_, k) => {
        const r = receipts.find((x) => x.index === tile.index * TILE_WIDTH + k)!;
        const extra = parseTlogProof(r.receipt).extra!;
        return leafFromFields(extra, payloadOf.get(r.index)!);
      });
      const got = await getBytes(`/${formatTilePath(tile)}`);
      expect(got.status, formatTilePath(tile)).toBe(200);
      expect(bytesEqual(got.bytes, encodeEntryBundle(leaves)), formatTilePath(tile)).toBe(true);
      for (const leaf of leaves) expect(decodeLeaf(leaf).payload.length).toBeGreaterThan(0);
    }
    // The early checkpoint's partial tile is still served: a prefix of today's tile.
    const w = partialTileWidth(early.size, 0);
    const earlyTile = await getBytes(`/tile/0/000.p/${w}`);
    expect(earlyTile.status).toBe(200);
    expect(bytesEqual(earlyTile.bytes, built[0]!.data.subarray(0, 32 * w))).toBe(true);
    // Tiles the tree does not serve yet are 404.
    expect((await getBytes("/tile/0/001")).status).toBe(404);
    expect((await getBytes("/tile/0/001.p/250")).status).toBe(404);
  });

  it("drains an in-flight request on SIGTERM, signs a final checkpoint and exits 0", async () => {
    const last = payload(505, "in flight at SIGTERM");
    const answered = await submitAcross(last, async () => {
      server.child.kill("SIGTERM");
      await until(
        () => server.stdout().includes("SIGTERM: draining"),
        5000,
        () => "the server to log SIGTERM",
      );
    });
    expect(answered.status, answered.body).toBe(201);
    const r = JSON.parse(answered.body) as ReceiptJson;
    expect(r.index).toBe(505);
    checkReceipt(r, last);
    payloadOf.set(r.index, last);
    receipts.push(r);
    leafHashes.push(base64Decode(r.leafHash));

    const { code, signal } = await server.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toMatch(/stopped at size 506\b/);
    expect(server.stderr()).toBe("");

    // The final checkpoint, remembered in DATA/checkpoint: size 506, signed, time-stamped.
    const final = readFileSync(join(dataDir, "checkpoint"), "utf8");
    const opened = openCheckpoint(final, verifier);
    expect(opened.checkpoint.size).toBe(506);
    expect(bytesEqual(opened.checkpoint.rootHash, rootOf(leafHashes))).toBe(true);
    finalNote = final;
  });

  it("restarts on the same data directory and carries on from the same tree", async () => {
    server = await startServer(dataDir, backend);
    expect(server.stdout()).toMatch(/\(506 entries\) serving on/);
    expect(server.stdout()).not.toMatch(/created an admin token/);
    expect(readFileSync(join(dataDir, "admin.token"), "utf8").trim()).toBe(token);

    const info = await getJson<{ timestampVerifierKey: string }>("/v1/log");
    const stamps = cosignatureVerifierFromKey(info.timestampVerifierKey);
    const now = await latestCheckpoint();
    expect(now.note).toBe(finalNote);
    const opened = openCheckpoint(now.note, verifier, [stamps]);
    expect(opened.checkpoint.size).toBe(506);
    const stamp = opened.signatures.find((s) => s.timestamp !== undefined)?.timestamp;
    expect(stamp).toBeGreaterThan(0);
    const previous = openCheckpoint(before.note, verifier, [stamps]).signatures.find(
      (s) => s.timestamp !== undefined,
    )?.timestamp;
    expect(stamp).toBeGreaterThanOrEqual(previous!);

    // Consistent with what was published before the restart.
    for (const old of [before.checkpoint, { size: early.size, rootHash: early.root }]) {
      const c = await getJson<{ proof: string[] }>(
        `/v1/proofs/consistency?from=${old.size}&to=506`,
      );
      verifyConsistency(old.size, 506, c.proof.map(b64), old.rootHash, opened.checkpoint.rootHash);
    }

    // An old receipt still verifies, and its entry is still there.
    checkReceipt(receipts[0]!, payloadOf.get(receipts[0]!.index)!);
    const e = await getJson<EntryJson>(`/v1/entries/${receipts[0]!.index}`, auth());
    expect(e.id).toBe(receipts[0]!.id);

    // New submissions continue at the next index, with later ids and timestamps.
    const next = await submit(payload(506, "after restart"));
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    expect(next.body.index).toBe(506);
    expect(next.body.treeSize).toBe(507);
    expect(next.body.timestamp).toBeGreaterThanOrEqual(receipts.at(-1)!.timestamp);
    expect(next.body.id > receipts.at(-1)!.id).toBe(true);
    checkReceipt(next.body, payload(506, "after restart"));
    const batch = await submitBatch([payload(507, "after restart"), payload(508, "after restart")]);
    expect(batch.map((r) => r.index)).toEqual([507, 508]);
    const c = await getJson<{ proof: string[] }>(`/v1/proofs/consistency?from=506&to=509`);
    const latest = await latestCheckpoint();
    expect(latest.checkpoint.size).toBe(509);
    verifyConsistency(
      506,
      509,
      c.proof.map(b64),
      opened.checkpoint.rootHash,
      latest.checkpoint.rootHash,
    );
  });

  it("refuses a second server on the same data directory with LOCKED", async () => {
    // The same arguments: with --store, the same database and origin too. Refused, it exits at
    // once; one that serves, or stands by as the writer's front end (sharing DATA, and its
    // rollback marker, with the running server), is stopped as soon as it says so.
    const second = spawnServe(dataDir, backend);
    let exited = false;
    void second.exited.then(() => {
      exited = true;
    });
    const timer = setTimeout(() => second.child.kill("SIGKILL"), START_TIMEOUT_MS);
    await until(
      () => exited || /serving on|standing by/.test(second.output()),
      2 * START_TIMEOUT_MS,
      () => "the second server to exit",
    );
    second.child.kill("SIGKILL"); // nothing if it has exited
    const { code } = await second.exited;
    clearTimeout(timer);
    const said = `the second server said:\n${second.output()}`;
    expect(second.output(), said).not.toMatch(/serving on|standing by/);
    expect(code, said).not.toBe(0);
    expect(code, said).not.toBeNull();
    expect(second.stderr(), said).toMatch(/LOCKED/);
    expect(second.stderr(), said).toContain(dataDir);
    // The running server is unaffected.
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await latestCheckpoint()).checkpoint.size).toBe(509);
  });

  it("stops cleanly again", async () => {
    server.child.kill("SIGTERM");
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.stdout()).toMatch(/stopped at size 509\b/);
  });
}

describe("vellum serve on LevelDB (the default), end to end", () =>
  endToEnd({ name: "level", args: [], stateIn: /state in LevelDB in / }));

const pg = needService("postgres", ["VELLUM_PG_URL"]);

describe.skipIf(pg === undefined)("vellum serve on PostgreSQL, end to end", () =>
  endToEnd({
    name: "pg",
    // A fresh origin: a fresh set of schemas in the shared test database.
    args: [
      ...["--store", pg?.VELLUM_PG_URL ?? ""],
      ...["--origin", `e2e-${randomBytes(4).toString("hex")}.serve.test/log`],
    ],
    stateIn: /state in PostgreSQL at [^ ]+ \(schemas vellum_e2e_[0-9a-f]{8}_serve_test/,
  }),
);
