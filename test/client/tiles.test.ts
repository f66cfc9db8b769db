/**
 * The tile reader against a real Vellum log of 70,000 entries (three tile levels): node hashes
 * at every height equal roots recomputed from the leaves, and inclusion and consistency proofs
 * built from tiles equal the server's /v1/proofs answers and verify against independently
 * computed roots. Then the transport: caching and its bound, full-vs-partial tile choice and
 * fallback, gzip, auth, retries with backoff, timeouts, and the error codes for 404 and bad data.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VellumClient } from "../../src/client/http.js";
import { type FetchLike, TileDataError, TileReader } from "../../src/client/tiles.js";
import { VerifyingClient } from "../../src/client/verifying.js";
import { base64Encode } from "../../src/core/bytes.js";
import { CompactRange, rootOf } from "../../src/core/compact.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import { get } from "../server/helpers.js";
import { closeAll, fillTo, startVellum } from "./tlog-fixtures.js";

const SIZE = 70_000;
let vellum: Awaited<ReturnType<typeof startVellum>>;
let leafHashes: Uint8Array[];
/** Roots of the tree at the sizes the tests use, from the leaf hashes alone. */
const roots = new Map<number, Uint8Array>();
const SIZES = [1, 2, 3, 255, 256, 257, 300, 511, 512, 513, 4097, 65535, 65536, 65537, 69999, SIZE];

beforeAll(async () => {
  vellum = await startVellum();
  await fillTo(vellum.log, SIZE);
  leafHashes = [];
  for (let start = 0; start < SIZE; start += 1000) {
    for (const e of await vellum.log.entries(start, 1000)) leafHashes.push(e.leafHash);
  }
  const range = CompactRange.empty();
  for (const [i, h] of leafHashes.entries()) {
    range.append(h);
    if (SIZES.includes(i + 1)) roots.set(i + 1, range.root());
  }
});
afterAll(closeAll);

const proofJson = async (path: string) =>
  ((await (await get(vellum.app, path)).json()) as { proof: string[] }).proof;

describe("TileReader over a Vellum log: nodes and proofs", () => {
  it("computes every node hash from tiles, at heights that are and are not multiples of 8", async () => {
    const reader = new TileReader({ url: vellum.url });
    const cases: [number, number, number][] = [
      // [height, index, tree size]
      [0, 0, SIZE],
      [0, 69_999, SIZE],
      [1, 3, SIZE],
      [3, 31, 300],
      [7, 1, 300],
      [8, 0, 300],
      [8, 272, SIZE],
      [9, 1, SIZE],
      [12, 16, SIZE],
      [15, 1, SIZE],
      [16, 0, SIZE],
      [16, 0, 65_536],
      [10, 66, 69_000],
    ];
    for (const [height, index, size] of cases) {
      const width = 2 ** height;
      const expected = rootOf(leafHashes.slice(index * width, (index + 1) * width));
      expect(base64Encode(await reader.nodeHash(height, index, size))).toBe(base64Encode(expected));
    }
    await expect(reader.nodeHash(17, 0, SIZE)).rejects.toMatchObject({ code: "OUT_OF_RANGE" });
  });

  it("builds inclusion proofs equal to /v1/proofs/inclusion that verify", async () => {
    const reader = new TileReader({ url: vellum.url });
    for (const size of SIZES) {
      for (const index of new Set([0, size - 1, Math.floor(size / 2), Math.floor(size / 3)])) {
        const proof = await reader.inclusionProof(index, size);
        const served = await proofJson(`/v1/proofs/inclusion?index=${index}&size=${size}`);
        expect(proof.map(base64Encode)).toEqual(served);
        verifyInclusion(index, size, leafHashes[index]!, proof, roots.get(size)!);
      }
    }
  });

  it("builds consistency proofs equal to /v1/proofs/consistency that verify", async () => {
    const reader = new TileReader({ url: vellum.url });
    for (const [i, size2] of SIZES.entries()) {
      for (const size1 of [0, ...SIZES.slice(0, i + 1)]) {
        const proof = await reader.consistencyProof(size1, size2);
        const served = await proofJson(`/v1/proofs/consistency?from=${size1}&to=${size2}`);
        expect(proof.map(base64Encode)).toEqual(served);
        if (size1 > 0) verifyConsistency(size1, size2, proof, roots.get(size1)!, roots.get(size2)!);
      }
    }
  });

  it("fetches each tile once, caches within its bound, and reads bundles with a token", async () => {
    const paths: string[] = [];
    const counting: FetchLike = (url, init) => {
      paths.push(new URL(url).pathname);
      return vellum.fetch(url, init);
    };
    const reader = new TileReader({ url: "http://vellum.test", fetch: counting });
    await Promise.all([reader.inclusionProof(5, SIZE), reader.inclusionProof(6, SIZE)]);
    const tiles = paths.length;
    expect(new Set(paths).size).toBe(tiles); // concurrent readers shared each fetch
    await reader.inclusionProof(7, SIZE);
    expect(paths.length).toBe(tiles); // all from the cache
    expect(reader.stats.cacheHits).toBeGreaterThan(0);
    const small = new TileReader({ url: "http://vellum.test", fetch: counting, cacheTiles: 1 });
    await small.inclusionProof(5, SIZE);
    await small.inclusionProof(5, SIZE);
    expect(paths.length - tiles).toBeGreaterThanOrEqual(2 * tiles - 1); // the cache is bounded

    await expect(reader.entryBundle(0, SIZE)).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
    const authed = new TileReader({
      url: "http://vellum.test/",
      fetch: vellum.fetch,
      headers: { Authorization: `Bearer ${vellum.tokens.read}` },
    });
    const bundle = await authed.entryBundle(273, SIZE);
    expect(bundle.entries).toHaveLength(SIZE - 273 * 256);
    expect(bundle.path).toBe("tile/entries/273.p/112");
    const wrongScope = new TileReader({
      url: "http://vellum.test/",
      fetch: vellum.fetch,
      headers: { Authorization: `Bearer ${vellum.tokens.append}` },
    });
    await expect(wrongScope.entryBundle(0, SIZE)).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("serves the SDK's verifying client as a proof source that does not trust the server's proofs", async () => {
    const reader = new TileReader({ url: vellum.url });
    const client = new VerifyingClient(new VellumClient({ url: vellum.url }), {
      logKey: vellum.vkey,
      proofs: reader,
    });
    const trusted = await client.update();
    expect(trusted.checkpoint.size).toBe(SIZE);
    await client.verifyInclusion(12_345, leafHashes[12_345]!);
    await expect(client.verifyInclusion(12_345, leafHashes[12_346]!)).rejects.toMatchObject({
      code: "PROOF_MISMATCH",
    });
  });

  it("decodes gzip Content-Encoding transparently over real HTTP", async () => {
    const encodings: (string | null)[] = [];
    const reader = new TileReader({
      url: vellum.url,
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        encodings.push(res.headers.get("Content-Encoding"));
        return res;
      },
    });
    const tile = await reader.hashTile(0, 0, SIZE);
    expect(encodings).toEqual(["gzip"]);
    expect(tile.hashes.map(base64Encode)).toEqual(leafHashes.slice(0, 256).map(base64Encode));
  });
});

// ---- transport behaviour against a scripted server --------------------------------------------

type Answer = Response | Error | "hang";

/** A fetch that answers from a script per path (the last answer repeats), counting calls. */
function scripted(script: Record<string, Answer[]>) {
  const calls: string[] = [];
  const fetch: FetchLike = (url, init) => {
    const path = new URL(url).pathname.slice(1);
    calls.push(path);
    const answers = script[path] ?? [new Response("no such path", { status: 404 })];
    const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
    if (answer === "hang") {
      return new Promise((_, reject) => {
        init.signal?.addEventListener("abort", () => reject(init.signal!.reason));
      });
    }
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve(answer.clone());
  };
  return { fetch, calls };
}

const hashes = (n: number, fill = 7) => new Uint8Array(32 * n).fill(fill);
const ok = (body: Uint8Array | string, headers: Record<string, string> = {}) =>
  new Response(body as Uint8Array<ArrayBuffer>, { status: 200, headers });
const status = (code: number, headers: Record<string, string> = {}) =>
  new Response("x", { status: code, headers });

describe("TileReader transport", () => {
  const waits: number[] = [];
  const sleep = async (ms: number) => {
    waits.push(ms);
  };

  it("retries 5xx and 429 with exponential backoff, honouring Retry-After", async () => {
    waits.length = 0;
    const s = scripted({
      checkpoint: [status(503), status(429, { "Retry-After": "2" }), status(500), ok("note\n")],
    });
    const reader = new TileReader({ url: "http://t/", fetch: s.fetch, sleep, backoffMs: 100 });
    expect(await reader.checkpoint()).toBe("note\n");
    expect(waits).toEqual([100, 2000, 400]);
    expect(reader.stats).toMatchObject({ requests: 4, retries: 3 });
  });

  it("gives up with UNAVAILABLE on 5xx and NETWORK on network errors and timeouts", async () => {
    const s = scripted({
      checkpoint: [status(502)],
      "tile/0/000": [new TypeError("fetch failed")],
      "tile/0/001": ["hang"],
    });
    const reader = new TileReader({ url: "http://t", fetch: s.fetch, sleep, retries: 2 });
    await expect(reader.checkpoint()).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(s.calls.filter((p) => p === "checkpoint")).toHaveLength(3);
    await expect(reader.hashTile(0, 0, 256)).rejects.toMatchObject({ code: "NETWORK" });
    const quick = new TileReader({
      url: "http://t",
      fetch: s.fetch,
      sleep,
      retries: 1,
      timeoutMs: 20,
    });
    await expect(quick.hashTile(0, 1, 512)).rejects.toMatchObject({ code: "NETWORK" });
    expect(s.calls.filter((p) => p === "tile/0/001")).toHaveLength(2);
  });

  it("does not retry 404 (NOT_FOUND) or other 4xx (NETWORK)", async () => {
    const s = scripted({ checkpoint: [status(400)] });
    const reader = new TileReader({ url: "http://t", fetch: s.fetch, sleep });
    await expect(reader.hashTile(0, 0, 256)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(reader.checkpoint()).rejects.toMatchObject({ code: "NETWORK" });
    expect(s.calls).toEqual(["tile/0/000", "checkpoint"]);
  });

  it("refuses bad data with MALFORMED and keeps the bytes", async () => {
    const s = scripted({
      "tile/0/000.p/2": [ok(hashes(3))],
      "tile/entries/000.p/2": [ok(Uint8Array.of(0, 1, 9))],
      "tile/entries/001.p/1": [ok(Uint8Array.of(0, 5, 1))],
    });
    const reader = new TileReader({ url: "http://t", fetch: s.fetch, sleep });
    const bad = await reader.hashTile(0, 0, 2).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(TileDataError);
    expect(bad).toMatchObject({ code: "MALFORMED", resource: { path: "tile/0/000.p/2" } });
    await expect(reader.entryBundle(0, 2)).rejects.toMatchObject({ code: "MALFORMED" });
    await expect(reader.entryBundle(1, 257)).rejects.toMatchObject({ code: "MALFORMED" });
  });

  it("falls back from a dropped partial tile to the full one, and prefers full tiles it knows exist", async () => {
    const s = scripted({
      "tile/0/000": [ok(hashes(256))],
      "tile/entries/000": [ok(new Uint8Array(512))], // 256 empty entries
      "tile/1/000.p/3": [ok(hashes(3, 9))],
    });
    const reader = new TileReader({ url: "http://t", fetch: s.fetch, sleep });
    const t = await reader.hashTile(0, 0, 10);
    expect(t.hashes).toHaveLength(10);
    expect(t.tile.width).toBe(256);
    expect(s.calls).toEqual(["tile/0/000.p/10", "tile/0/000"]);
    expect((await reader.entryBundle(0, 5)).entries).toHaveLength(5);

    s.calls.length = 0;
    const fresh = new TileReader({ url: "http://t", fetch: s.fetch, sleep });
    fresh.observeSize(1000);
    await fresh.entryBundle(0, 7);
    expect(s.calls).toEqual(["tile/entries/000"]);
    // A wider partial tile of the known size (level 1 has 3 nodes at size 1000) serves a
    // narrower one, and is cached.
    expect((await fresh.hashTile(1, 0, 512)).hashes).toHaveLength(2);
    expect(s.calls).toEqual(["tile/entries/000", "tile/1/000.p/3"]);
    await fresh.hashTile(1, 0, 768);
    expect(s.calls).toHaveLength(2);
  });

  it("checks its arguments", () => {
    expect(() => new TileReader({ url: "ftp://x/" })).toThrow(
      expect.objectContaining({ code: "MALFORMED" }),
    );
    const reader = new TileReader({ url: "http://t/" });
    expect(() => reader.observeSize(2 ** 53)).toThrow(
      expect.objectContaining({ code: "OUT_OF_RANGE" }),
    );
    return expect(reader.hashTile(0, 1, 256)).rejects.toMatchObject({ code: "OUT_OF_RANGE" });
  });
});
