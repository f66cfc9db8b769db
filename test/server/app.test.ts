/**
 * The HTTP API in process (`app.request`, no network): every route's success path and its
 * errors, checked against what the verifier library and first-principles recomputation say —
 * receipts verify offline with the key from GET /v1/log, tiles and bundles are rebuilt from the
 * entries, proofs verify against roots recomputed from the leaves. Errors are asserted by their
 * stable `code`, never by message.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { resultsFromMultiproof } from "../../src/client/http.js";
import { base64Decode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { decodeLeafFields, formatUuid, leafFromFields } from "../../src/core/entry.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { buildHashTile, encodeEntryBundle, type HashTileId } from "../../src/core/tiles.js";
import { verifyTlogProof } from "../../src/core/tlog-proof.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import type { ProblemCode } from "../../src/server/problem.js";
import { codeOf } from "../helpers/errors.js";
import {
  type App,
  allEntries,
  type Body,
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
  post,
  postJson,
  type ReceiptJson,
} from "./helpers.js";

const MAX_PAYLOAD = 65438;

interface BatchResult extends Partial<ReceiptJson> {
  status: number;
  error?: { code: string; detail: string };
}

interface LogInfo {
  origin: string;
  verifierKey: string;
  timestampVerifierKey: string;
  treeSize: number;
  checkpoint: string;
  checkpointTime: number;
  status: string;
  publicReads: boolean;
  dedup: string;
  limits: { maxPayloadSize: number; maxBatchEntries: number; maxPageSize: number };
}

const logInfo = async (app: App) => expectJson<LogInfo>(await get(app, "/v1/log"), 200);
const checkpointText = async (app: App) => (await get(app, "/checkpoint")).text();

/**
 * Verifies a receipt the way an integrator would: the verifier library, the verifier key from
 * GET /v1/log, and the payload; then rebuilds the leaf from `extra` + payload.
 */
async function verifyReceipt(app: App, r: ReceiptJson, payload: Uint8Array): Promise<void> {
  const logKey = verifierFromKey((await logInfo(app)).verifierKey);
  const leafHash = base64Decode(r.leafHash);
  const verified = verifyTlogProof(r.receipt, leafHash, logKey);
  expect(verified.index).toBe(r.index);
  expect(verified.checkpoint.size).toBe(r.treeSize);
  expect(r.receipt.endsWith(`\n\n${r.checkpoint}`)).toBe(true);
  const fields = decodeLeafFields(verified.extra!);
  expect(formatUuid(fields.id)).toBe(r.id);
  expect(fields.timestamp).toBe(r.timestamp);
  expect(fields.submitter ?? null).toBe(r.submitter);
  const leaf = leafFromFields(verified.extra!, payload);
  expect(hex(hashLeaf(leaf))).toBe(hex(leafHash));
  // The same receipt does not prove any other payload.
  const other = hashLeaf(leafFromFields(verified.extra!, enc("something else")));
  expect(() => verifyTlogProof(r.receipt, other, logKey)).toThrow();
}

const submit = (h: Harness, payload: Body, headers: Record<string, string> = {}) =>
  post(h.app, "/v1/entries", { token: h.tokens.append, body: payload, headers });

const payloadOf = (i: number, tag = "entry") => enc(`${tag} ${i}: ${"lorem ipsum ".repeat(3)}`);

/** The non-canonical decimals every numeric parameter must refuse, with their codes. */
const BAD_DECIMALS: [string, ProblemCode][] = [
  ["01", "MALFORMED"],
  ["-1", "MALFORMED"],
  ["1e3", "MALFORMED"],
  ["1.0", "MALFORMED"],
  ["0x10", "MALFORMED"],
  ["%201", "MALFORMED"],
  ["", "MALFORMED"],
  ["9007199254740993", "OUT_OF_RANGE"],
];

// ---------------------------------------------------------------------------------------------

describe("POST /v1/entries", () => {
  it("201 with a receipt that verifies offline; the checkpoint is the latest note", async () => {
    const h = await openHarness();
    const payload = payloadOf(0);
    const res = await submit(h, payload);
    const r = await expectJson<ReceiptJson>(res, 201);
    expect(r).toMatchObject({ index: 0, treeSize: 1, duplicate: false });
    // Who submitted it: the append token's public id, committed to in the leaf.
    expect(r.submitter).toBe(h.tokenStore.verify(h.tokens.append)!.id);
    expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await verifyReceipt(h.app, r, payload);
    expect(await checkpointText(h.app)).toBe(r.checkpoint);
    expect((await logInfo(h.app)).checkpoint).toBe(r.checkpoint);

    // A second entry: its receipt is against the new latest checkpoint, which extends the first.
    const r2 = await expectJson<ReceiptJson>(await submit(h, payloadOf(1)), 201);
    expect(r2).toMatchObject({ index: 1, treeSize: 2 });
    await verifyReceipt(h.app, r2, payloadOf(1));
    expect(await checkpointText(h.app)).toBe(r2.checkpoint);
    expect(r2.checkpoint).not.toBe(r.checkpoint);
  });

  it("the same payload again without a key is a new entry: identical events are distinct", async () => {
    const h = await openHarness();
    const first = await expectJson<ReceiptJson>(await submit(h, payloadOf(7)), 201);
    const second = await expectJson<ReceiptJson>(await submit(h, payloadOf(7)), 201);
    expect(second).toMatchObject({ index: 1, duplicate: false });
    expect(second.id).not.toBe(first.id);
    await verifyReceipt(h.app, second, payloadOf(7));
    expect((await logInfo(h.app)).dedup).toBe("key");
    expect(h.log.size).toBe(2);
  });

  it("under --dedup payload, the same payload again is 200 with the original, and adds nothing", async () => {
    const h = await openHarness({ log: { dedup: "payload" } });
    expect((await logInfo(h.app)).dedup).toBe("payload");
    const first = await expectJson<ReceiptJson>(await submit(h, payloadOf(7)), 201);
    const before = await checkpointText(h.app);
    const again = await expectJson<ReceiptJson>(await submit(h, payloadOf(7)), 200);
    expect(again).toMatchObject({
      index: first.index,
      id: first.id,
      timestamp: first.timestamp,
      leafHash: first.leafHash,
      duplicate: true,
    });
    await verifyReceipt(h.app, again, payloadOf(7));
    expect(await checkpointText(h.app)).toBe(before);
    expect(h.log.size).toBe(1);
  });

  it("Idempotency-Key: same key and payload is the original; another payload is 409 CONFLICT", async () => {
    const h = await openHarness();
    const key = { "Idempotency-Key": "order-42" };
    const first = await expectJson<ReceiptJson>(await submit(h, payloadOf(1), key), 201);
    const again = await expectJson<ReceiptJson>(await submit(h, payloadOf(1), key), 200);
    expect(again).toMatchObject({ index: first.index, id: first.id, duplicate: true });
    const before = await checkpointText(h.app);
    await expectProblem(await submit(h, payloadOf(2), key), 409, "CONFLICT");
    expect(await checkpointText(h.app)).toBe(before);
    expect(h.log.size).toBe(1);
    // The key still names the original.
    const third = await expectJson<ReceiptJson>(await submit(h, payloadOf(1), key), 200);
    expect(third.index).toBe(first.index);
    // The same bytes without the key, or under another key, are another event.
    await expectJson(await submit(h, payloadOf(1)), 201);
    await expectJson(await submit(h, payloadOf(1), { "Idempotency-Key": "late" }), 201);
    await expectProblem(
      await submit(h, payloadOf(4), { "Idempotency-Key": "late" }),
      409,
      "CONFLICT",
    );
    expect(h.log.size).toBe(3);
  });

  it("under --dedup payload, a key first attached to an existing payload binds to it", async () => {
    const h = await openHarness({ log: { dedup: "payload" } });
    await expectJson(await submit(h, payloadOf(3)), 201);
    await expectJson(await submit(h, payloadOf(3), { "Idempotency-Key": "late" }), 200);
    await expectProblem(
      await submit(h, payloadOf(4), { "Idempotency-Key": "late" }),
      409,
      "CONFLICT",
    );
    expect(h.log.size).toBe(1);
  });

  it("an Idempotency-Key outside 1-200 characters is 400 BAD_REQUEST", async () => {
    const h = await openHarness();
    await expectProblem(
      await submit(h, payloadOf(1), { "Idempotency-Key": "" }),
      400,
      "BAD_REQUEST",
    );
    await expectProblem(
      await submit(h, payloadOf(1), { "Idempotency-Key": "k".repeat(201) }),
      400,
      "BAD_REQUEST",
    );
    await expectJson(await submit(h, payloadOf(1), { "Idempotency-Key": "k".repeat(200) }), 201);
    expect(h.log.size).toBe(1);
  });

  it("an empty body is 400 BAD_REQUEST", async () => {
    const h = await openHarness();
    await expectProblem(await submit(h, new Uint8Array(0)), 400, "BAD_REQUEST");
    await expectProblem(
      await post(h.app, "/v1/entries", { token: h.tokens.append }),
      400,
      "BAD_REQUEST",
    );
    expect(h.log.size).toBe(0);
  });

  it(`takes ${MAX_PAYLOAD} bytes; one more is 413 PAYLOAD_TOO_LARGE naming the limit`, async () => {
    const h = await openHarness();
    const max = new Uint8Array(MAX_PAYLOAD).fill(0x61);
    const r = await expectJson<ReceiptJson>(await submit(h, max), 201);
    await verifyReceipt(h.app, r, max);
    const over = new Uint8Array(MAX_PAYLOAD + 1).fill(0x62);
    const problem = await expectProblem(await submit(h, over), 413, "PAYLOAD_TOO_LARGE");
    expect(problem.detail).toContain(String(MAX_PAYLOAD));
    const big = await expectProblem(
      await submit(h, new Uint8Array(1 << 20)),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    expect(big.detail).toContain(String(MAX_PAYLOAD));
    expect(h.log.size).toBe(1);
    // The entry bundle slot holds the whole leaf: a 2-byte length, then [2, id, timestamp,
    // submitter, payload] = 1 + 1 + 17 + 9 + (1 + 16) + (3 + MAX_PAYLOAD) bytes. The limit
    // leaves room for a 64-byte submitter: a slot would still hold it.
    const bundle = await bodyBytes(
      await get(h.app, "/tile/entries/000.p/1", { token: h.tokens.read }),
    );
    expect(bundle.length).toBe(2 + 1 + 1 + 17 + 9 + 17 + 3 + MAX_PAYLOAD);
    // (64 bytes of submitter: 48 more, and its head takes 2 bytes instead of 1.)
    expect(bundle.length + 48 + 1).toBe(65537);
  });

  it("a closed log answers 503 UNAVAILABLE with Retry-After, and reads keep working", async () => {
    const h = await openHarness();
    await expectJson(await submit(h, payloadOf(1)), 201);
    await h.log.close();
    const res = await submit(h, payloadOf(2));
    await expectProblem(res, 503, "UNAVAILABLE");
    expect(Number(res.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    const ready = await get(h.app, "/readyz");
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: "closed" });
    expect((await get(h.app, "/healthz")).status).toBe(200);
    expect((await get(h.app, "/checkpoint")).status).toBe(200);
    expect(h.log.size).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe("POST /v1/entries/batch", () => {
  const batch = (h: Harness, body: unknown, headers: Record<string, string> = {}) =>
    postJson(h.app, "/v1/entries/batch", body, { token: h.tokens.append, headers });

  it("answers in request order with one verifying receipt per entry, duplicates (--dedup payload) as originals", async () => {
    const h = await openHarness({ log: { dedup: "payload" } });
    const existing = await expectJson<ReceiptJson>(await submit(h, payloadOf(100)), 201);
    const payloads = [payloadOf(0), payloadOf(1), payloadOf(100), payloadOf(2), payloadOf(1)];
    const { results } = await expectJson<{ results: BatchResult[] }>(
      await batch(h, { entries: payloads.map((p) => ({ payload: b64(p) })) }),
      200,
    );
    expect(results.map((r) => r.status)).toEqual([201, 201, 200, 201, 200]);
    expect(results.map((r) => r.index)).toEqual([1, 2, existing.index, 3, 2]);
    expect(results.map((r) => r.duplicate)).toEqual([false, false, true, false, true]);
    expect(results[2]!.id).toBe(existing.id);
    for (const [i, r] of results.entries())
      await verifyReceipt(h.app, r as ReceiptJson, payloads[i]!);
    // The new entries went in as one batch under one checkpoint, which is the latest.
    const checkpoints = new Set(results.map((r) => r.checkpoint));
    expect(checkpoints.size).toBe(1);
    expect(await checkpointText(h.app)).toBe(results[0]!.checkpoint);
    // The batch's receipts (proofs computed together) are byte for byte the ones a single
    // receipt request gives against the same checkpoint.
    for (const r of results) {
      const one = await expectJson<ReceiptJson>(
        await get(h.app, `/v1/entries/${r.index}/receipt`, { token: h.tokens.read }),
        200,
      );
      expect(r.receipt).toBe(one.receipt);
    }
    expect(h.log.size).toBe(4);
    // Order is request order even for a large batch.
    const many = Array.from({ length: 300 }, (_, i) => payloadOf(i, "many"));
    const big = await expectJson<{ results: BatchResult[] }>(
      await batch(h, { entries: many.map((p) => ({ payload: b64(p) })) }),
      200,
    );
    expect(big.results.map((r) => r.index)).toEqual(many.map((_, i) => 4 + i));
    const entries = await allEntries(h.app, h.tokens.read);
    expect(entries.slice(4).map((e) => e.payload)).toEqual(many.map(b64));
  });

  it("?proof=multi answers one checkpoint and one multiproof that rebuild the full answer's receipts byte for byte", async () => {
    const h = await openHarness({ log: { dedup: "payload" } });
    const existing = await expectJson<ReceiptJson>(await submit(h, payloadOf(100)), 201);
    await batch(h, { entries: [{ payload: b64(payloadOf(7)), idempotencyKey: "seven" }] });
    const payloads = [
      ...Array.from({ length: 40 }, (_, i) => payloadOf(i, "multi")),
      payloadOf(100), // a duplicate of an older entry: proven at its original index
      payloadOf(3, "multi"), // the same payload twice in one batch
    ];
    const entries = [
      ...payloads.map((p) => ({ payload: b64(p) })),
      { payload: b64(payloadOf(8)), idempotencyKey: "seven" }, // CONFLICT, reported in place
    ];
    const res = await postJson(
      h.app,
      "/v1/entries/batch?proof=multi",
      { entries },
      {
        token: h.tokens.append,
      },
    );
    const answer = await expectJson<Record<string, unknown>>(res, 200);
    const rows = answer.results as BatchResult[];
    expect(rows.map((r) => r.status)).toEqual([
      ...payloads.map((_, i) => (i >= 40 ? 200 : 201)),
      409,
    ]);
    expect(rows[40]!.index).toBe(existing.index);
    expect(rows[41]!.index).toBe(rows[3]!.index);
    expect(rows[42]!.error?.code).toBe("CONFLICT");
    expect(answer.treeSize).toBe(h.log.size);
    expect(answer.checkpoint).toBe(await checkpointText(h.app));
    // No witness policy: nothing was witnessed, and the answer does not claim it.
    expect(answer.witnessed).toBe(false);
    expect(rows.every((r) => r.receipt === undefined && r.checkpoint === undefined)).toBe(true);
    // Far fewer hashes than 42 separate proofs would carry.
    expect((answer.multiproof as string[]).length).toBeLessThan(2 * Math.log2(h.log.size) + 2);

    const ok: Record<string, unknown> = { ...answer, results: rows.slice(0, 42) };
    const rebuilt = resultsFromMultiproof(ok);
    for (const [i, r] of rebuilt.entries()) {
      const full = await expectJson<ReceiptJson>(
        await get(h.app, `/v1/entries/${r.index}/receipt`, { token: h.tokens.read }),
        200,
      );
      expect(r.receipt).toBe(full.receipt);
      expect(r.checkpoint).toBe(full.checkpoint);
      await verifyReceipt(h.app, { ...full, receipt: r.receipt }, payloads[i]!);
    }
    // The refused entry makes the client's helper throw its code.
    expect(codeOf(() => resultsFromMultiproof(answer))).toBe("CONFLICT");
    // A changed, missing or extra hash, or a changed leaf hash, is refused.
    const hashes = ok.multiproof as string[];
    const flipped = base64Decode(hashes[0]!);
    flipped[0]! ^= 1;
    const tampered = (change: Record<string, unknown>) =>
      codeOf(() => resultsFromMultiproof({ ...ok, ...change }));
    expect(tampered({ multiproof: [b64(flipped), ...hashes.slice(1)] })).toBe("PROOF_MISMATCH");
    expect(tampered({ multiproof: hashes.slice(1) })).toBe("PROOF_LENGTH");
    expect(tampered({ multiproof: [...hashes, hashes[0]!] })).toBe("PROOF_LENGTH");
    const badLeaf = rows
      .slice(0, 42)
      .map((r, i) => (i === 5 ? { ...r, leafHash: b64(flipped) } : r));
    expect(tampered({ results: badLeaf })).toBe("PROOF_MISMATCH");
    // A size the entries are not all in, or one the checkpoint does not have.
    expect(tampered({ treeSize: (ok.treeSize as number) - 1 })).toBe("OUT_OF_RANGE");
    expect(tampered({ treeSize: (ok.treeSize as number) + 1 })).not.toBe("no error");

    // A full answer (what a server without multiproofs sends) is read as it is.
    const full = await expectJson<Record<string, unknown>>(
      await postJson(
        h.app,
        "/v1/entries/batch",
        { entries: entries.slice(0, 42) },
        { token: h.tokens.append },
      ),
      200,
    );
    const fromFull = resultsFromMultiproof(full);
    expect(fromFull.map((r) => r.index)).toEqual(rebuilt.map((r) => r.index));
    expect(fromFull.map((r) => r.receipt)).toEqual(rebuilt.map((r) => r.receipt));

    expectProblem(
      await postJson(
        h.app,
        "/v1/entries/batch?proof=some",
        { entries },
        { token: h.tokens.append },
      ),
      400,
      "BAD_REQUEST",
    );
  });

  it("per-entry failures are reported in place and do not fail the others", async () => {
    const h = await openHarness();
    await expectJson(
      await batch(h, { entries: [{ payload: b64(payloadOf(1)), idempotencyKey: "k" }] }),
      200,
    );
    const { results } = await expectJson<{ results: BatchResult[] }>(
      await batch(h, {
        entries: [
          { payload: b64(payloadOf(2)) },
          { payload: b64(payloadOf(1)), idempotencyKey: "k" },
          { payload: b64(payloadOf(3)), idempotencyKey: "k" },
        ],
      }),
      200,
    );
    expect(results.map((r) => r.status)).toEqual([201, 200, 409]);
    expect(results[1]!.index).toBe(0);
    expect(results[2]!.error?.code).toBe("CONFLICT");
    expect(results[2]!.index).toBeUndefined();
    expect(h.log.size).toBe(2);
  });

  it("a retry of the original (key, payload) is 200 even while a conflicting use of the key is in flight", async () => {
    const h = await openHarness();
    const original = { payload: b64(payloadOf(1)), idempotencyKey: "k" };
    await expectJson(await batch(h, { entries: [original] }), 200);
    // Same request, other order: the conflicting use of "k" is queued first.
    const { results } = await expectJson<{ results: BatchResult[] }>(
      await batch(h, { entries: [{ payload: b64(payloadOf(3)), idempotencyKey: "k" }, original] }),
      200,
    );
    expect(results.map((r) => r.error?.code ?? r.status)).toEqual(["CONFLICT", 200]);
    expect(results[1]!.index).toBe(0);
    expect(h.log.size).toBe(1);
  });

  const valid = { payload: b64(enc("valid entry")) };
  const cases: [string, unknown, number, ProblemCode][] = [
    ["malformed base64", { entries: [valid, { payload: "not base64!" }] }, 400, "MALFORMED"],
    ["non-canonical base64 padding", { entries: [valid, { payload: "QR==" }] }, 400, "MALFORMED"],
    ["unpadded base64", { entries: [valid, { payload: "QUI" }] }, 400, "MALFORMED"],
    ["the URL-safe alphabet", { entries: [valid, { payload: "-_-_" }] }, 400, "MALFORMED"],
    ["a payload that is a number", { entries: [valid, { payload: 12 }] }, 400, "BAD_REQUEST"],
    ["a payload that is bytes", { entries: [{ payload: [1, 2] }] }, 400, "BAD_REQUEST"],
    ["a missing payload", { entries: [valid, {}] }, 400, "BAD_REQUEST"],
    ["an entry that is a string", { entries: [valid, "aGk="] }, 400, "BAD_REQUEST"],
    ["an entry that is null", { entries: [valid, null] }, 400, "BAD_REQUEST"],
    ["an empty payload", { entries: [valid, { payload: "" }] }, 400, "BAD_REQUEST"],
    [
      "an idempotency key that is a number",
      { entries: [valid, { payload: "aGk=", idempotencyKey: 5 }] },
      400,
      "BAD_REQUEST",
    ],
    [
      "an empty idempotency key",
      { entries: [valid, { payload: "aGk=", idempotencyKey: "" }] },
      400,
      "BAD_REQUEST",
    ],
    [
      "an idempotency key of 201 characters",
      { entries: [valid, { payload: "aGk=", idempotencyKey: "k".repeat(201) }] },
      400,
      "BAD_REQUEST",
    ],
    [
      "a payload over the limit",
      { entries: [valid, { payload: b64(new Uint8Array(MAX_PAYLOAD + 1)) }] },
      413,
      "TOO_LARGE",
    ],
    ["entries that is an object", { entries: { 0: valid } }, 400, "BAD_REQUEST"],
    ["entries that is a string", { entries: "aGk=" }, 400, "BAD_REQUEST"],
    ["no entries", {}, 400, "BAD_REQUEST"],
    ["zero entries", { entries: [] }, 400, "BAD_REQUEST"],
    ["more entries than allowed (8)", { entries: Array(9).fill(valid) }, 400, "BAD_REQUEST"],
    ["a bare array", [valid], 400, "BAD_REQUEST"],
    ["null", null, 400, "BAD_REQUEST"],
    ["a string", "entries", 400, "BAD_REQUEST"],
  ];
  it.each(cases)("refuses %s as a whole and changes nothing", async (_, body, status, code) => {
    const h = await openHarness({ maxBatchEntries: 8 });
    await expectJson(await submit(h, payloadOf(0)), 201);
    const before = await checkpointText(h.app);
    await expectProblem(await batch(h, body), status, code);
    expect(await checkpointText(h.app)).toBe(before);
    expect(h.log.size).toBe(1);
    // The valid entry in the refused batch was not stored either.
    expect((await allEntries(h.app, h.tokens.read)).map((e) => e.payload)).toEqual([
      b64(payloadOf(0)),
    ]);
  });

  it("takes exactly maxBatchEntries entries", async () => {
    const h = await openHarness({ maxBatchEntries: 8 });
    const { results } = await expectJson<{ results: BatchResult[] }>(
      await batch(h, {
        entries: Array.from({ length: 8 }, (_, i) => ({ payload: b64(payloadOf(i)) })),
      }),
      200,
    );
    expect(results).toHaveLength(8);
    expect(h.log.size).toBe(8);
    expect((await logInfo(h.app)).limits.maxBatchEntries).toBe(8);
  });

  it("refuses bodies that are not JSON, or not sent as JSON, and changes nothing", async () => {
    const h = await openHarness();
    const body = JSON.stringify({ entries: [{ payload: b64(payloadOf(1)) }] });
    const send = (headers: Record<string, string>, text = body) =>
      post(h.app, "/v1/entries/batch", { token: h.tokens.append, headers, body: text });
    await expectProblem(
      await send({ "Content-Type": "text/plain" }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    await expectProblem(
      await send({ "Content-Type": "application/octet-stream" }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    await expectProblem(
      await send({ "Content-Type": "application/x-www-form-urlencoded" }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    await expectProblem(await send({}), 415, "UNSUPPORTED_MEDIA_TYPE");
    await expectProblem(
      await send({ "Content-Type": "application/json" }, "{entries: ["),
      400,
      "BAD_REQUEST",
    );
    await expectProblem(await send({ "Content-Type": "application/json" }, ""), 400, "BAD_REQUEST");
    await expectProblem(
      await send({ "Content-Type": "application/json" }, "\xff\xfe{}"),
      400,
      "BAD_REQUEST",
    );
    expect(h.log.size).toBe(0);
    // The same body with the right type goes in.
    await expectJson(await send({ "Content-Type": "application/json; charset=utf-8" }), 200);
    expect(h.log.size).toBe(1);
  });

  it("a body over 16 MiB is 413 PAYLOAD_TOO_LARGE", async () => {
    const h = await openHarness();
    const huge = `{"entries":[{"payload":"${"A".repeat(16 * 1024 * 1024)}"}]}`;
    const problem = await expectProblem(
      await post(h.app, "/v1/entries/batch", {
        token: h.tokens.append,
        headers: { "Content-Type": "application/json" },
        body: huge,
      }),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    expect(problem.detail).toContain(String(16 * 1024 * 1024));
    expect(h.log.size).toBe(0);
  });
});

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

// ---------------------------------------------------------------------------------------------

describe("tokens", () => {
  interface TokenJson {
    id: string;
    name: string;
    scopes: string[];
    created: number;
    revoked: number | null;
    token?: string;
  }

  it("an admin creates, lists and revokes tokens; a revoked token is 401", async () => {
    const h = await openHarness();
    const created = await expectJson<TokenJson>(
      await postJson(
        h.app,
        "/v1/tokens",
        { name: "ci", scopes: ["append", "read", "append"] },
        {
          token: h.tokens.admin,
        },
      ),
      201,
    );
    expect(created).toMatchObject({ name: "ci", scopes: ["append", "read"], revoked: null });
    expect(created.id).toMatch(/^[0-9a-f]{16}$/);
    expect(created.token).toMatch(/^vellum_[A-Za-z0-9_-]{43}$/);
    const secret = created.token!;

    // It works for its scopes and only those.
    await expectJson(await post(h.app, "/v1/entries", { token: secret, body: "from ci" }), 201);
    await expectJson(await get(h.app, "/v1/entries/0", { token: secret }), 200);
    await expectProblem(await get(h.app, "/v1/tokens", { token: secret }), 403, "FORBIDDEN");

    // The list shows it, never a secret.
    const listRes = await get(h.app, "/v1/tokens", { token: h.tokens.admin });
    const listText = await listRes.clone().text();
    const { tokens } = await expectJson<{ tokens: TokenJson[] }>(listRes, 200);
    expect(tokens.map((t) => t.name)).toEqual([
      "all",
      "admin only",
      "append only",
      "read only",
      "ci",
    ]);
    expect(tokens.every((t) => t.token === undefined)).toBe(true);
    expect(listText).not.toContain("vellum_");

    const revoked = await expectJson<TokenJson>(
      await post(h.app, `/v1/tokens/${created.id}/revoke`, { token: h.tokens.admin }),
      200,
    );
    expect(revoked).toMatchObject({ id: created.id, name: "ci" });
    expect(revoked.revoked).toBeGreaterThanOrEqual(created.created);
    const res = await get(h.app, "/v1/entries/0", { token: secret });
    await expectProblem(res, 401, "UNAUTHENTICATED");
    expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer /);
    await expectProblem(
      await post(h.app, "/v1/entries", { token: secret, body: "after revoke" }),
      401,
      "UNAUTHENTICATED",
    );
    // Revoking again is harmless; the list shows the revocation.
    await expectJson(
      await post(h.app, `/v1/tokens/${created.id}/revoke`, { token: h.tokens.admin }),
      200,
    );
    const after = await expectJson<{ tokens: TokenJson[] }>(
      await get(h.app, "/v1/tokens", { token: h.tokens.admin }),
      200,
    );
    expect(after.tokens.find((t) => t.id === created.id)?.revoked).toBe(revoked.revoked);
    expect(h.log.size).toBe(1);
  });

  it("refuses bad token requests by code", async () => {
    const h = await openHarness();
    const create = (body: unknown) =>
      postJson(h.app, "/v1/tokens", body, { token: h.tokens.admin });
    await expectProblem(
      await post(h.app, "/v1/tokens", { token: h.tokens.admin, body: "{not json" }),
      400,
      "BAD_REQUEST",
    );
    await expectProblem(await create({ name: "x", scopes: ["root"] }), 400, "BAD_REQUEST");
    await expectProblem(await create({ name: 5, scopes: ["read"] }), 400, "BAD_REQUEST");
    await expectProblem(await create({ name: "x", scopes: "read" }), 400, "BAD_REQUEST");
    await expectProblem(await create({ name: "x" }), 400, "BAD_REQUEST");
    await expectProblem(await create(null), 400, "BAD_REQUEST");
    await expectProblem(await create({ name: "x", scopes: [] }), 400, "MALFORMED");
    await expectProblem(await create({ name: "", scopes: ["read"] }), 400, "MALFORMED");
    await expectProblem(await create({ name: "a\nb", scopes: ["read"] }), 400, "MALFORMED");
    await expectProblem(
      await create({ name: "n".repeat(101), scopes: ["read"] }),
      400,
      "MALFORMED",
    );
    await expectProblem(
      await create({ name: "n".repeat(5000), scopes: ["read"] }),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    await expectProblem(
      await post(h.app, "/v1/tokens/0123456789abcdef/revoke", { token: h.tokens.admin }),
      404,
      "NOT_FOUND",
    );
    await expectProblem(
      await post(h.app, "/v1/tokens/not-an-id/revoke", { token: h.tokens.admin }),
      404,
      "NOT_FOUND",
    );
    expect(h.tokenStore.count).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------

describe("operations", () => {
  it("/healthz and /readyz", async () => {
    const h = await openHarness();
    expect(await expectJson(await get(h.app, "/healthz"), 200)).toEqual({ status: "ok" });
    expect(await expectJson(await get(h.app, "/readyz"), 200)).toEqual({ status: "ready" });
  });

  /** The value of one Prometheus sample line, e.g. `name{code="X"} 3`. */
  const sample = (text: string, series: string): number | undefined => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it("/metrics counts submissions, errors and requests, and reports the tree size", async () => {
    const h = await openHarness();
    const key = { "Idempotency-Key": "one" };
    await expectJson(await submit(h, payloadOf(1), key), 201);
    await expectJson(await submit(h, payloadOf(2)), 201);
    await expectJson(await submit(h, payloadOf(1), key), 200);
    await expectProblem(await submit(h, new Uint8Array(0)), 400, "BAD_REQUEST");
    await expectProblem(
      await get(h.app, "/v1/entries/99", { token: h.tokens.read }),
      404,
      "NOT_FOUND",
    );
    await expectProblem(await get(h.app, "/nowhere"), 404, "ROUTE_NOT_FOUND");
    await expectProblem(await get(h.app, "/v1/tokens"), 401, "UNAUTHENTICATED");
    const res = await get(h.app, "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("# TYPE vellum_submissions_total counter");
    expect(text).toContain("# TYPE vellum_errors_total counter");
    expect(text).toContain("# TYPE vellum_tree_size gauge");
    expect(sample(text, 'vellum_submissions_total{result="created"}')).toBe(2);
    expect(sample(text, 'vellum_submissions_total{result="duplicate"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="BAD_REQUEST"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="NOT_FOUND"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="ROUTE_NOT_FOUND"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="UNAUTHENTICATED"}')).toBe(1);
    expect(sample(text, "vellum_tree_size")).toBe(2);
    expect(sample(text, 'vellum_http_requests_total{class="2xx"}')).toBe(3);
    expect(sample(text, 'vellum_http_requests_total{class="4xx"}')).toBe(4);
    // Every sample line is `name[{labels}] number` (blank lines separate families).
    for (const line of text
      .trim()
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? -?[0-9.e+]+$/);
    }
  });

  it("/metrics counts one error per error answer (a 405 is not also a ROUTE_NOT_FOUND)", async () => {
    const h = await openHarness();
    await expectProblem(await call(h.app, "DELETE", "/checkpoint"), 405, "METHOD_NOT_ALLOWED");
    const text = await (await get(h.app, "/metrics")).text();
    expect(sample(text, 'vellum_errors_total{code="METHOD_NOT_ALLOWED"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="ROUTE_NOT_FOUND"}')).toBeUndefined();
  });

  it("/openapi.json is an OpenAPI 3.1 document", async () => {
    const h = await openHarness();
    const doc = await expectJson<{ openapi: string; info: { title: string } }>(
      await get(h.app, "/openapi.json"),
      200,
    );
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBe("Vellum HTTP API");
  });

  it("/openapi.json documents every route the app serves", async () => {
    const h = await openHarness();
    const doc = await expectJson<{ paths: Record<string, Record<string, unknown>> }>(
      await get(h.app, "/openapi.json"),
      200,
    );
    const missing = h.app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path}`)
      .filter((route, i, all) => all.indexOf(route) === i)
      .filter((route) => {
        const [method, path] = route.split(" ") as [string, string];
        if (path === "/tile/*") {
          return !Object.keys(doc.paths).some((p) => p.startsWith("/tile/"));
        }
        const openapiPath = path.replace(/:([A-Za-z]+)/g, "{$1}");
        return doc.paths[openapiPath]?.[method.toLowerCase()] === undefined;
      });
    expect(missing).toEqual([]);
  });

  it("/docs is a self-contained HTML page", async () => {
    const h = await openHarness();
    const res = await get(h.app, "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^text\/html; charset=utf-8$/i);
    const html = await res.text();
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain("<title>Vellum HTTP API 0.1.0 — API reference</title>");
    expect(html).toContain('href="/openapi.json"');
    // One inline script (try it), nothing loaded from elsewhere: test/server/docs.test.ts.
    expect(html).not.toMatch(/<script[^>]*\ssrc=/i);
  });
});

// ---------------------------------------------------------------------------------------------
// Auth: every protected route, four ways; public routes need nothing.

type Req = { method: string; path: string; body?: () => Body; json?: boolean };

interface Protected {
  readonly name: string;
  readonly scope: "append" | "read" | "admin";
  /** A valid request; may set up what it needs. */
  readonly make: (h: Harness) => Promise<Req>;
  readonly ok: number;
}

let unique = 0;
const PROTECTED: Protected[] = [
  {
    name: "POST /v1/entries",
    scope: "append",
    ok: 201,
    make: async () => ({ method: "POST", path: "/v1/entries", body: () => `auth ${unique++}` }),
  },
  {
    name: "POST /v1/entries/batch",
    scope: "append",
    ok: 200,
    make: async () => ({
      method: "POST",
      path: "/v1/entries/batch",
      json: true,
      body: () => JSON.stringify({ entries: [{ payload: b64(enc(`auth batch ${unique++}`)) }] }),
    }),
  },
  {
    name: "GET /v1/entries",
    scope: "read",
    ok: 200,
    make: async () => ({ method: "GET", path: "/v1/entries" }),
  },
  {
    name: "GET /v1/entries/:index",
    scope: "read",
    ok: 200,
    make: async () => ({ method: "GET", path: "/v1/entries/0" }),
  },
  {
    name: "GET /v1/entries/by-id/:id",
    scope: "read",
    ok: 200,
    make: async (h) => ({ method: "GET", path: `/v1/entries/by-id/${(await h.log.entry(0)).id}` }),
  },
  {
    name: "GET /v1/entries/by-leaf-hash/:hash",
    scope: "read",
    ok: 200,
    make: async (h) => ({
      method: "GET",
      path: `/v1/entries/by-leaf-hash/${b64url((await h.log.entry(0)).leafHash)}`,
    }),
  },
  {
    name: "GET /tile/entries/<N>",
    scope: "read",
    ok: 200,
    make: async () => ({ method: "GET", path: "/tile/entries/000.p/1" }),
  },
  {
    name: "GET /v1/tokens",
    scope: "admin",
    ok: 200,
    make: async () => ({ method: "GET", path: "/v1/tokens" }),
  },
  {
    name: "POST /v1/tokens",
    scope: "admin",
    ok: 201,
    make: async () => ({
      method: "POST",
      path: "/v1/tokens",
      json: true,
      body: () => JSON.stringify({ name: `made ${unique++}`, scopes: ["read"] }),
    }),
  },
  {
    name: "POST /v1/tokens/:id/revoke",
    scope: "admin",
    ok: 200,
    make: async (h) => ({
      method: "POST",
      path: `/v1/tokens/${(await h.tokenStore.create(`victim ${unique++}`, ["read"])).info.id}/revoke`,
    }),
  },
];

const PUBLIC: [string, number][] = [
  ["/checkpoint", 200],
  ["/tile/0/000.p/1", 200],
  ["/v1/proofs/inclusion?index=0", 200],
  ["/v1/proofs/consistency?from=1", 200],
  ["/v1/checkpoints/1", 200],
  ["/v1/log", 200],
  ["/healthz", 200],
  ["/readyz", 200],
  ["/metrics", 200],
  ["/openapi.json", 200],
  ["/docs", 200],
];

async function send(h: Harness, req: Req, authorization?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.Authorization = authorization;
  if (req.json === true) headers["Content-Type"] = "application/json";
  return call(h.app, req.method, req.path, {
    headers,
    ...(req.body === undefined ? {} : { body: req.body() }),
  });
}

async function seeded(options: { publicReads?: boolean } = {}): Promise<Harness> {
  const h = await openHarness(options);
  await h.log.submit(enc("seed"));
  return h;
}

describe("auth matrix", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await seeded();
  });

  describe.each(PROTECTED)("$name needs the $scope scope", (route) => {
    it("no token: 401 UNAUTHENTICATED with WWW-Authenticate", async () => {
      const size = h.log.size;
      const res = await send(h, await route.make(h));
      await expectProblem(res, 401, "UNAUTHENTICATED");
      expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="vellum"');
      expect(h.log.size).toBe(size);
    });

    it.each([
      ["an unknown token", `Bearer vellum_${"A".repeat(43)}`],
      ["a token without the prefix", "Bearer not-a-vellum-token"],
      ["an empty bearer token", "Bearer "],
      ["another scheme", "Basic dXNlcjpwYXNz"],
      ["a bare scheme", "Bearer"],
    ])("%s: 401 UNAUTHENTICATED with WWW-Authenticate", async (_, authorization) => {
      const size = h.log.size;
      const res = await send(h, await route.make(h), authorization);
      await expectProblem(res, 401, "UNAUTHENTICATED");
      expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="vellum"');
      expect(h.log.size).toBe(size);
    });

    it("a token lacking the scope: 403 FORBIDDEN", async () => {
      const size = h.log.size;
      const others = (["append", "read", "admin"] as const).filter((s) => s !== route.scope);
      for (const scope of others) {
        await expectProblem(
          await send(h, await route.make(h), `Bearer ${h.tokens[scope]}`),
          403,
          "FORBIDDEN",
        );
      }
      expect(h.log.size).toBe(size);
    });

    it("the right scope (alone, or among others) succeeds", async () => {
      for (const token of [h.tokens[route.scope], h.tokens.all]) {
        const res = await send(h, await route.make(h), `Bearer ${token}`);
        expect({ status: res.status, body: await res.text() }).toMatchObject({ status: route.ok });
      }
    });
  });

  it("the auth scheme is case-insensitive (RFC 9110 §11.1)", async () => {
    for (const scheme of ["bearer", "BEARER"]) {
      const res = await get(h.app, "/v1/entries/0", {
        headers: { Authorization: `${scheme} ${h.tokens.read}` },
      });
      expect({ status: res.status, body: await res.text() }).toMatchObject({ status: 200 });
    }
  });

  it("authentication comes before validation: a bad request without a token is 401", async () => {
    await expectProblem(await post(h.app, "/v1/entries"), 401, "UNAUTHENTICATED");
    await expectProblem(
      await post(h.app, "/v1/entries", { body: new Uint8Array(MAX_PAYLOAD + 1) }),
      401,
      "UNAUTHENTICATED",
    );
    await expectProblem(
      await post(h.app, "/v1/entries/batch", { body: "nonsense" }),
      401,
      "UNAUTHENTICATED",
    );
    await expectProblem(await get(h.app, "/v1/entries/01"), 401, "UNAUTHENTICATED");
  });

  it.each(PUBLIC)("%s needs no token", async (path, status) => {
    const res = await get(h.app, path);
    expect({ status: res.status, body: res.status === 200 ? "" : await res.text() }).toEqual({
      status,
      body: "",
    });
  });

  it("a token that is not valid is ignored on public routes and refused where a scope is needed", async () => {
    const bad = { Authorization: `Bearer vellum_${"B".repeat(43)}` };
    expect((await get(h.app, "/checkpoint", { headers: bad })).status).toBe(200);
    const res = await get(h.app, "/v1/entries/0", { headers: bad });
    expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="vellum"');
    expect(((await res.clone().json()) as { detail: string }).detail).toMatch(/not valid/);
    await expectProblem(res, 401, "UNAUTHENTICATED");
  });

  it("without publicReads, entries and bundles are not readable anonymously", async () => {
    expect((await logInfo(h.app)).publicReads).toBe(false);
    for (const path of ["/v1/entries", "/v1/entries/0", "/tile/entries/000.p/1"]) {
      await expectProblem(await get(h.app, path), 401, "UNAUTHENTICATED");
    }
  });
});

describe("publicReads: true", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await seeded({ publicReads: true });
  });

  it("entries and entry bundles are readable without a token", async () => {
    expect((await logInfo(h.app)).publicReads).toBe(true);
    for (const route of PROTECTED.filter((r) => r.scope === "read")) {
      const res = await send(h, await route.make(h));
      expect({ route: route.name, status: res.status }).toEqual({ route: route.name, status: 200 });
    }
    const bundle = await bodyBytes(await get(h.app, "/tile/entries/000.p/1"));
    expect(hex(bundle)).toBe(hex(encodeEntryBundle([(await h.log.entry(0)).leaf])));
  });

  it("writes still need append, tokens still need admin", async () => {
    for (const route of PROTECTED.filter((r) => r.scope !== "read")) {
      await expectProblem(await send(h, await route.make(h)), 401, "UNAUTHENTICATED");
      await expectProblem(
        await send(h, await route.make(h), `Bearer ${h.tokens.read}`),
        403,
        "FORBIDDEN",
      );
    }
    expect(h.log.size).toBe(1);
  });
});
