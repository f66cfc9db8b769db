/**
 * The HTTP API in process (`app.request`, no network), one route group per file: Reads over a populated log: checkpoints, log info, tiles, proofs, checkpoints by size, entries; tiles above level 0.
 * Checked against what the verifier library and first-principles recomputation say; errors are
 * asserted by their stable `code`, never by message.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { base64Decode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { buildHashTile, encodeEntryBundle, type HashTileId } from "../../src/core/tiles.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import {
  BAD_DECIMALS,
  type BatchResult,
  checkpointText,
  logInfo,
  MAX_PAYLOAD,
  payloadOf,
} from "./app-fixtures.js";
import {
  allEntries,
  b64,
  b64url,
  bodyBytes,
  call,
  type EntryJson,
  enc,
  expectJson,
  expectProblem,
  get,
  type Harness,
  hashLeaf,
  hex,
  leafOf,
  mth,
  openHarness,
  postJson,
} from "./helpers.js";

// ---------------------------------------------------------------------------------------------
// A log of 1,100 entries sequenced in four batches (published sizes 0, 1, 7, 300, 1100): enough
// for four full tiles and bundles, a partial at level 0 and at level 1, and several checkpoints.

const SIZES = [1, 7, 300, 1100];

describe("reads over a populated log", () => {
  let h: Harness;
  let entries: EntryJson[];
  let leaves: Uint8Array[];
  let leafHashes: Uint8Array[];
  let logKey: ReturnType<typeof verifierFromKey>;
  const payloads = Array.from({ length: 1100 }, (_, i) => payloadOf(i, "fixture"));
  const root = (size: number) => mth(leafHashes.slice(0, size));
  const node = (height: number, index: number) =>
    mth(leafHashes.slice(index * 2 ** height, (index + 1) * 2 ** height));

  beforeAll(async () => {
    h = await openHarness();
    let from = 0;
    for (const to of SIZES) {
      const res = await postJson(
        h.app,
        "/v1/entries/batch",
        { entries: payloads.slice(from, to).map((p) => ({ payload: b64(p) })) },
        { token: h.tokens.append },
      );
      const { results } = await expectJson<{ results: BatchResult[] }>(res, 200);
      expect(results.every((r) => r.status === 201 && r.treeSize === to)).toBe(true);
      from = to;
    }
    entries = await allEntries(h.app, h.tokens.read);
    leaves = entries.map(leafOf);
    leafHashes = leaves.map(hashLeaf);
    logKey = verifierFromKey((await logInfo(h.app)).verifierKey);
  });

  it("entries hold what was submitted, and their leaf hashes are the leaves' hashes", () => {
    expect(entries).toHaveLength(1100);
    entries.forEach((e, i) => {
      expect(e.index).toBe(i);
      expect(e.payload).toBe(b64(payloads[i]!));
      expect(e.leafHash).toBe(b64(leafHashes[i]!));
    });
    expect(new Set(entries.map((e) => e.id)).size).toBe(1100);
  });

  describe("GET /checkpoint", () => {
    it("is the signed latest checkpoint, text/plain, briefly cacheable", async () => {
      const res = await get(h.app, "/checkpoint");
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe("text/plain; charset=utf-8");
      const cache = res.headers.get("Cache-Control") ?? "";
      const maxAge = Number(/max-age=(\d+)/.exec(cache)?.[1]);
      expect(maxAge).toBeGreaterThan(0);
      expect(maxAge).toBeLessThanOrEqual(10);
      expect(cache).not.toContain("immutable");
      const { checkpoint } = openCheckpoint(await res.text(), logKey);
      expect(checkpoint.size).toBe(1100);
      expect(hex(checkpoint.rootHash)).toBe(hex(root(1100)));
    });
  });

  describe("GET /v1/log", () => {
    it("describes the log: origin, keys, size, latest checkpoint, limits", async () => {
      const info = await logInfo(h.app);
      expect(info).toMatchObject({
        origin: h.log.origin,
        treeSize: 1100,
        status: "open",
        publicReads: false,
        limits: { maxPayloadSize: MAX_PAYLOAD, maxBatchEntries: 10_000, maxPageSize: 1000 },
      });
      expect(info.checkpoint).toBe(await checkpointText(h.app));
      expect(info.verifierKey.startsWith(`${h.log.origin}+`)).toBe(true);
      expect(info.timestampVerifierKey).not.toBe(info.verifierKey);
      expect(verifierFromKey(info.timestampVerifierKey).name).toBe(h.log.origin);
    });
  });

  describe("tiles", () => {
    /** Expected bytes of a tile path, built from the entries with the core encoders. */
    const expected = (path: string): Uint8Array => {
      const m = /^\/tile\/(entries|\d+)\/(\d{3})(?:\.p\/(\d+))?$/.exec(path)!;
      const index = Number(m[2]);
      const width = m[3] === undefined ? 256 : Number(m[3]);
      if (m[1] === "entries")
        return encodeEntryBundle(leaves.slice(index * 256, index * 256 + width));
      const tile: HashTileId = { level: Number(m[1]), index, width };
      return buildHashTile(tile, node);
    };
    const FULL = ["/tile/0/000", "/tile/0/001", "/tile/0/002", "/tile/0/003"];
    const PARTIAL = ["/tile/0/004.p/76", "/tile/1/000.p/4"];
    const BUNDLES = ["/tile/entries/000", "/tile/entries/003", "/tile/entries/004.p/76"];

    it.each([...FULL, ...PARTIAL, ...BUNDLES])("%s is byte-exact", async (path) => {
      const res = await get(h.app, path, { token: h.tokens.read });
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe("application/octet-stream");
      expect(hex(await bodyBytes(res))).toBe(hex(expected(path)));
      const cache = res.headers.get("Cache-Control") ?? "";
      if (path.includes(".p/")) {
        expect(cache).not.toContain("immutable");
      } else {
        expect(cache).toContain("immutable");
        expect(cache).toContain("max-age=31536000");
      }
    });

    it("the level-1 partial tile holds the roots of the full level-0 tiles", async () => {
      const tile = await bodyBytes(await get(h.app, "/tile/1/000.p/4"));
      for (let i = 0; i < 4; i++) {
        const level0 = await bodyBytes(await get(h.app, `/tile/0/00${i}`));
        const hashes = Array.from({ length: 256 }, (_, j) => level0.slice(j * 32, j * 32 + 32));
        expect(hex(tile.slice(i * 32, i * 32 + 32))).toBe(hex(mth(hashes)));
      }
    });

    it("HEAD answers like GET without a body", async () => {
      const res = await call(h.app, "HEAD", "/tile/0/000");
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe("application/octet-stream");
      expect((await res.arrayBuffer()).byteLength).toBe(0);
    });

    it("gzips a large tile when the client accepts gzip, and only then", async () => {
      const plain = await get(h.app, "/tile/entries/000", { token: h.tokens.read });
      expect(plain.headers.get("Content-Encoding")).toBeNull();
      const identity = await bodyBytes(plain);
      expect(identity.length).toBeGreaterThan(1024);
      const zipped = await get(h.app, "/tile/entries/000", {
        token: h.tokens.read,
        headers: { "Accept-Encoding": "gzip" },
      });
      expect(zipped.status).toBe(200);
      expect(zipped.headers.get("Content-Encoding")).toBe("gzip");
      expect(zipped.headers.get("Vary") ?? "").toMatch(/accept-encoding/i);
      expect(hex(await bodyBytes(zipped))).toBe(hex(identity));
    });

    it("a wrong method under /tile/ is a 405 whose body is what Content-Encoding says", async () => {
      for (const method of ["POST", "DELETE", "PUT"]) {
        const res = await call(h.app, method, "/tile/0/000", {
          token: h.tokens.all,
          headers: { "Accept-Encoding": "gzip" },
          body: "x",
        });
        expect(res.status).toBe(405);
        expect(res.headers.get("Allow")).toBe("GET, HEAD");
        const raw = new Uint8Array(await res.clone().arrayBuffer());
        const bodyIsGzip = raw[0] === 0x1f && raw[1] === 0x8b;
        expect({
          method,
          contentEncoding: res.headers.get("Content-Encoding"),
          bodyIsGzip,
        }).toEqual({
          method,
          contentEncoding: bodyIsGzip ? "gzip" : null,
          bodyIsGzip,
        });
        await expectProblem(res, 405, "METHOD_NOT_ALLOWED");
      }
    });

    const BAD_PATHS = [
      "/tile/0/0",
      "/tile/0/00",
      "/tile/0/0000",
      "/tile/00/000",
      "/tile/01/000",
      "/tile/64/000",
      "/tile/100/000",
      "/tile/-1/000",
      "/tile/foo/000",
      "/tile/Entries/000",
      "/tile/0/x000/001",
      "/tile/0/x001",
      "/tile/0/x001/",
      "/tile/0/-01",
      "/tile/0/abc",
      "/tile/0/000.p/0",
      "/tile/0/000.p/256",
      "/tile/0/000.p/01",
      "/tile/0/000.p/",
      "/tile/0/000.p",
      "/tile/0/000.P/5",
      "/tile/0/000/",
      "/tile/0/000.p/5/",
      "/tile/0//000",
      "/tile//0/000",
      "/tile/0/000%2F",
      "/tile/0%2F000",
      "/tile/0/000%00",
      "/tile/entries/",
      "/tile/entries/0",
      "/tile/entries/000.p/256",
      `/tile/0/${"x000/".repeat(20)}001`,
    ];
    it.each(BAD_PATHS)("%s is 400 MALFORMED", async (path) => {
      await expectProblem(await get(h.app, path, { token: h.tokens.read }), 400, "MALFORMED");
    });

    it("an index beyond 2^53-1 is 400 OUT_OF_RANGE", async () => {
      await expectProblem(
        await get(h.app, "/tile/0/x009/x007/x199/x254/x740/992"),
        400,
        "OUT_OF_RANGE",
      );
    });

    const UNPUBLISHED = [
      "/tile/0/004",
      "/tile/0/005",
      "/tile/0/004.p/77",
      "/tile/0/005.p/1",
      "/tile/1/000",
      "/tile/1/000.p/5",
      "/tile/2/000.p/1",
      "/tile/63/000",
      "/tile/0/x009/x007/x199/x254/x740/991",
      "/tile/entries/004",
      "/tile/entries/004.p/77",
      "/tile/entries/005.p/1",
    ];
    it.each(UNPUBLISHED)("%s is 404 NOT_FOUND", async (path) => {
      await expectProblem(await get(h.app, path, { token: h.tokens.read }), 404, "NOT_FOUND");
    });
  });

  describe("GET /v1/proofs/inclusion", () => {
    interface InclusionJson {
      index: number;
      treeSize: number;
      proof: string[];
    }
    const inclusion = async (query: string) =>
      expectJson<InclusionJson>(await get(h.app, `/v1/proofs/inclusion?${query}`), 200);

    it("by index, at the latest size and at older ones, verifies against the leaves' roots", async () => {
      for (const [index, size] of [
        [0, 1],
        [0, 2],
        [6, 7],
        [3, 300],
        [255, 256],
        [256, 257],
        [299, 1000],
        [0, 1100],
        [1099, 1100],
        [517, 1100],
      ] as const) {
        const p = await inclusion(`index=${index}&size=${size}`);
        expect(p).toMatchObject({ index, treeSize: size });
        verifyInclusion(
          index,
          size,
          leafHashes[index]!,
          p.proof.map((x) => base64Decode(x)),
          root(size),
        );
      }
      const latest = await inclusion("index=42");
      expect(latest.treeSize).toBe(1100);
      verifyInclusion(
        42,
        1100,
        leafHashes[42]!,
        latest.proof.map((x) => base64Decode(x)),
        root(1100),
      );
      // A proof for another leaf does not verify this one.
      expect(() =>
        verifyInclusion(
          43,
          1100,
          leafHashes[43]!,
          latest.proof.map((x) => base64Decode(x)),
          root(1100),
        ),
      ).toThrow();
    });

    it("by leaf hash in standard base64, base64url (padded or not) and hex", async () => {
      const i = 777;
      const hash = leafHashes[i]!;
      const forms = [
        encodeURIComponent(b64(hash)),
        b64url(hash),
        `${b64url(hash)}%3D`,
        hex(hash),
        hex(hash).toUpperCase(),
      ];
      for (const form of forms) {
        const p = await inclusion(`leafHash=${form}`);
        expect(p).toMatchObject({ index: i, treeSize: 1100 });
        verifyInclusion(
          i,
          1100,
          hash,
          p.proof.map((x) => base64Decode(x)),
          root(1100),
        );
      }
      const older = await inclusion(`leafHash=${b64url(hash)}&size=1000`);
      verifyInclusion(
        i,
        1000,
        hash,
        older.proof.map((x) => base64Decode(x)),
        root(1000),
      );
    });

    it("refuses what it cannot prove, by code", async () => {
      const q = (query: string) => get(h.app, `/v1/proofs/inclusion?${query}`);
      await expectProblem(await q("index=1100"), 400, "OUT_OF_RANGE");
      await expectProblem(await q("index=5&size=5"), 400, "OUT_OF_RANGE");
      await expectProblem(await q("index=0&size=0"), 400, "OUT_OF_RANGE");
      await expectProblem(await q("index=0&size=1101"), 400, "OUT_OF_RANGE");
      await expectProblem(await q("index=0&size=9007199254740991"), 400, "OUT_OF_RANGE");
      await expectProblem(
        await q(`leafHash=${b64url(leafHashes[900]!)}&size=900`),
        400,
        "OUT_OF_RANGE",
      );
      await expectProblem(await q(""), 400, "BAD_REQUEST");
      await expectProblem(await q("size=5"), 400, "BAD_REQUEST");
      await expectProblem(await q(`leafHash=${b64url(new Uint8Array(32))}`), 404, "NOT_FOUND");
      await expectProblem(await q(`leafHash=${b64url(new Uint8Array(31))}`), 400, "MALFORMED");
      await expectProblem(await q(`leafHash=${hex(new Uint8Array(33))}`), 400, "MALFORMED");
      await expectProblem(await q("leafHash=not%20a%20hash"), 400, "MALFORMED");
      await expectProblem(await q("leafHash="), 400, "MALFORMED");
    });

    it.each(BAD_DECIMALS)("index or size %j is 400 %s", async (bad, code) => {
      await expectProblem(await get(h.app, `/v1/proofs/inclusion?index=${bad}`), 400, code);
      await expectProblem(await get(h.app, `/v1/proofs/inclusion?index=0&size=${bad}`), 400, code);
    });
  });

  describe("GET /v1/proofs/consistency", () => {
    interface ConsistencyJson {
      from: number;
      to: number;
      proof: string[];
    }
    it("proves every pair of sizes against the leaves' roots", async () => {
      for (const [from, to] of [
        [0, 1100],
        [1, 7],
        [7, 300],
        [300, 1100],
        [1, 1100],
        [256, 1100],
        [5, 9],
        [1099, 1100],
        [1100, 1100],
      ] as const) {
        const p = await expectJson<ConsistencyJson>(
          await get(h.app, `/v1/proofs/consistency?from=${from}&to=${to}`),
          200,
        );
        expect(p).toMatchObject({ from, to });
        verifyConsistency(
          from,
          to,
          p.proof.map((x) => base64Decode(x)),
          root(from),
          root(to),
        );
      }
      const latest = await expectJson<ConsistencyJson>(
        await get(h.app, "/v1/proofs/consistency?from=300"),
        200,
      );
      expect(latest.to).toBe(1100);
      const proof = latest.proof.map((x) => base64Decode(x));
      verifyConsistency(300, 1100, proof, root(300), root(1100));
      // The proof does not fit another old root.
      expect(() => verifyConsistency(300, 1100, proof, root(299), root(1100))).toThrow();
    });

    it("refuses what it cannot prove, by code", async () => {
      const q = (query: string) => get(h.app, `/v1/proofs/consistency?${query}`);
      await expectProblem(await q("from=8&to=7"), 400, "OUT_OF_RANGE");
      await expectProblem(await q("from=1&to=1101"), 400, "OUT_OF_RANGE");
      await expectProblem(await q("from=1101"), 400, "OUT_OF_RANGE");
      await expectProblem(await q(""), 400, "BAD_REQUEST");
      await expectProblem(await q("to=5"), 400, "BAD_REQUEST");
    });

    it.each(BAD_DECIMALS)("from or to %j is 400 %s", async (bad, code) => {
      await expectProblem(await get(h.app, `/v1/proofs/consistency?from=${bad}`), 400, code);
      await expectProblem(await get(h.app, `/v1/proofs/consistency?from=0&to=${bad}`), 400, code);
    });
  });

  describe("GET /v1/checkpoints/:size", () => {
    it("serves the checkpoint of every published size, signed, with that size's root", async () => {
      for (const size of [0, ...SIZES]) {
        const res = await get(h.app, `/v1/checkpoints/${size}`);
        expect(res.status).toBe(200);
        expect(res.headers.get("Content-Type")).toBe("text/plain; charset=utf-8");
        const { checkpoint } = openCheckpoint(await res.text(), logKey);
        expect(checkpoint.size).toBe(size);
        expect(hex(checkpoint.rootHash)).toBe(hex(root(size)));
      }
      expect(await (await get(h.app, "/v1/checkpoints/1100")).text()).toBe(
        await checkpointText(h.app),
      );
    });

    it("a size never published is 404; beyond the tree, 400 OUT_OF_RANGE", async () => {
      await expectProblem(await get(h.app, "/v1/checkpoints/2"), 404, "NOT_FOUND");
      await expectProblem(await get(h.app, "/v1/checkpoints/299"), 404, "NOT_FOUND");
      await expectProblem(await get(h.app, "/v1/checkpoints/1101"), 400, "OUT_OF_RANGE");
    });

    it.each(BAD_DECIMALS.filter(([bad]) => bad !== ""))("%j is 400 %s", async (bad, code) => {
      await expectProblem(await get(h.app, `/v1/checkpoints/${bad}`), 400, code);
    });
  });

  describe("entries", () => {
    const read = (path: string) => get(h.app, path, { token: h.tokens.read });

    it("by index, id and leaf hash (base64url, percent-encoded base64, hex) agree", async () => {
      for (const i of [0, 1, 255, 256, 1099]) {
        const e = entries[i]!;
        const hash = leafHashes[i]!;
        expect(await expectJson(await read(`/v1/entries/${i}`), 200)).toEqual(e);
        expect(await expectJson(await read(`/v1/entries/by-id/${e.id}`), 200)).toEqual(e);
        for (const form of [b64url(hash), encodeURIComponent(b64(hash)), hex(hash)]) {
          expect(await expectJson(await read(`/v1/entries/by-leaf-hash/${form}`), 200)).toEqual(e);
        }
      }
    });

    it("refuses unknown and malformed keys by code", async () => {
      await expectProblem(await read("/v1/entries/1100"), 404, "NOT_FOUND");
      await expectProblem(await read("/v1/entries/9007199254740991"), 404, "NOT_FOUND");
      await expectProblem(
        await read("/v1/entries/by-id/00000000-0000-7000-8000-000000000000"),
        404,
        "NOT_FOUND",
      );
      await expectProblem(
        await read(`/v1/entries/by-id/${entries[0]!.id.toUpperCase()}`),
        400,
        "MALFORMED",
      );
      await expectProblem(
        await read(`/v1/entries/by-id/${entries[0]!.id.replaceAll("-", "")}`),
        400,
        "MALFORMED",
      );
      await expectProblem(await read("/v1/entries/by-id/nope"), 400, "MALFORMED");
      await expectProblem(
        await read(`/v1/entries/by-leaf-hash/${b64url(new Uint8Array(32).fill(7))}`),
        404,
        "NOT_FOUND",
      );
      await expectProblem(
        await read(`/v1/entries/by-leaf-hash/${hex(new Uint8Array(31))}`),
        400,
        "MALFORMED",
      );
      await expectProblem(await read("/v1/entries/by-leaf-hash/%24%24%24"), 400, "MALFORMED");
    });

    it.each(BAD_DECIMALS.filter(([bad]) => bad !== ""))("index %j is 400 %s", async (bad, code) => {
      await expectProblem(await read(`/v1/entries/${bad}`), 400, code);
    });

    it("pages through ranges with `next`", async () => {
      const first = await expectJson<{
        entries: EntryJson[];
        next: number | null;
        treeSize: number;
      }>(await read("/v1/entries"), 200);
      expect(first.entries).toEqual(entries.slice(0, 100));
      expect(first.next).toBe(100);
      expect(first.treeSize).toBe(1100);

      const walked: EntryJson[] = [];
      let start: number | null = 0;
      let pages = 0;
      while (start !== null) {
        const page: { entries: EntryJson[]; next: number | null } = await expectJson(
          await read(`/v1/entries?start=${start}&limit=333`),
          200,
        );
        walked.push(...page.entries);
        start = page.next;
        pages++;
      }
      expect(pages).toBe(4);
      expect(walked).toEqual(entries);

      const tail = await expectJson<{ entries: EntryJson[]; next: number | null }>(
        await read("/v1/entries?start=1050&limit=100"),
        200,
      );
      expect(tail.entries).toEqual(entries.slice(1050));
      expect(tail.next).toBeNull();

      const capped = await expectJson<{ entries: EntryJson[]; next: number | null }>(
        await read("/v1/entries?start=5&limit=5000"),
        200,
      );
      expect(capped.entries).toEqual(entries.slice(5, 1005));
      expect(capped.next).toBe(1005);

      for (const start of [1100, 1101, 9007199254740991]) {
        const past = await expectJson<{ entries: EntryJson[]; next: number | null }>(
          await read(`/v1/entries?start=${start}`),
          200,
        );
        expect(past).toMatchObject({ entries: [], next: null });
      }
    });

    it.each(BAD_DECIMALS)("start or limit %j is 400 %s", async (bad, code) => {
      await expectProblem(await read(`/v1/entries?start=${bad}`), 400, code);
      await expectProblem(await read(`/v1/entries?limit=${bad}`), 400, code);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("tiles above level 0 (65,836 entries)", () => {
  it("full and partial tiles at levels 0, 1 and 2 are byte-exact", async () => {
    const h = await openHarness();
    const n = 256 * 256 + 300;
    for (let off = 0; off < n; off += 8192) {
      const count = Math.min(8192, n - off);
      await Promise.all(Array.from({ length: count }, (_, i) => h.log.submit(enc(`e${off + i}`))));
    }
    const leaves = (await h.log.entries(0, n)).map((e) => e.leaf);
    expect(leaves).toHaveLength(n);
    const hashes = leaves.map(hashLeaf);
    const node = (height: number, index: number) =>
      mth(hashes.slice(index * 2 ** height, (index + 1) * 2 ** height));
    const tile = (level: number, index: number, width: number) =>
      hex(buildHashTile({ level, index, width }, node));
    const fetchTile = async (path: string) => {
      const res = await get(h.app, path, { token: h.tokens.read });
      expect(res.status).toBe(200);
      return { bytes: hex(await bodyBytes(res)), cache: res.headers.get("Cache-Control") ?? "" };
    };

    const full1 = await fetchTile("/tile/1/000");
    expect(full1.bytes).toBe(tile(1, 0, 256));
    expect(full1.cache).toContain("immutable");
    expect((await fetchTile("/tile/1/001.p/1")).bytes).toBe(tile(1, 1, 1));
    expect((await fetchTile("/tile/2/000.p/1")).bytes).toBe(tile(2, 0, 1));
    expect((await fetchTile("/tile/0/255")).bytes).toBe(tile(0, 255, 256));
    expect((await fetchTile("/tile/0/256")).bytes).toBe(tile(0, 256, 256));
    expect((await fetchTile("/tile/0/257.p/44")).bytes).toBe(tile(0, 257, 44));
    expect((await fetchTile("/tile/entries/257.p/44")).bytes).toBe(
      hex(encodeEntryBundle(leaves.slice(257 * 256))),
    );
    await expectProblem(await get(h.app, "/tile/1/001"), 404, "NOT_FOUND");
    await expectProblem(await get(h.app, "/tile/2/000"), 404, "NOT_FOUND");
    const { checkpoint } = openCheckpoint(
      await checkpointText(h.app),
      verifierFromKey(h.log.signer.verifierKey),
    );
    expect(hex(checkpoint.rootHash)).toBe(hex(mth(hashes)));
    await h.log.close();
  });
});
