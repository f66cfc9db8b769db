/**
 * The HTTP API in process (`app.request`, no network), one route group per file: POST /v1/entries and POST /v1/entries/batch: submissions, dedup, limits and receipts.
 * Checked against what the verifier library and first-principles recomputation say; errors are
 * asserted by their stable `code`, never by message.
 */
import { describe, expect, it } from "vitest";
import { resultsFromMultiproof } from "../../src/client/http.js";
import { base64Decode } from "../../src/core/bytes.js";
import type { ProblemCode } from "../../src/server/problem.js";
import { codeOf } from "../helpers/errors.js";
import {
  type BatchResult,
  checkpointText,
  logInfo,
  MAX_PAYLOAD,
  payloadOf,
  submit,
  verifyReceipt,
} from "./app-fixtures.js";
import {
  allEntries,
  b64,
  bodyBytes,
  enc,
  expectJson,
  expectProblem,
  get,
  type Harness,
  openHarness,
  post,
  postJson,
  type ReceiptJson,
} from "./helpers.js";

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
