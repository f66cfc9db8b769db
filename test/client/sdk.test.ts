/**
 * The SDK against a real server on 127.0.0.1: submit (single, batch, idempotent), offline receipt
 * verification (every byte class of a receipt tampered is refused with the right code), the
 * verifying client's trusted state (file store, keyed by the log key), split views caught with
 * evidence, and retries on back-pressure.
 */
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { afterAll, describe, expect, it } from "vitest";
import { FileTrustedStore } from "../../src/client/file-store.js";
import { VellumClient } from "../../src/client/http.js";
import { receiptVerifier, verifyReceipt } from "../../src/client/receipts.js";
import { MemoryTrustedStore, VerifyingClient } from "../../src/client/verifying.js";
import { base64Decode, base64Encode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { verifyConsistency } from "../../src/core/verify.js";
import { codeOf } from "../helpers/errors.js";
import { openHarness } from "../server/helpers.js";

const servers: ReturnType<typeof serve>[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

async function startServer() {
  const h = await openHarness();
  const url = await new Promise<string>((resolve) => {
    const s = serve({ fetch: h.app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
      resolve(`http://127.0.0.1:${(info as AddressInfo).port}`),
    );
    servers.push(s);
  });
  return { ...h, url, client: new VellumClient({ url, token: h.tokens.all }) };
}

const enc = (s: string) => new TextEncoder().encode(s);

describe("SDK: submissions and receipts", () => {
  it("submits single and batched entries; every receipt verifies offline, with the payload", async () => {
    const { client, log } = await startServer();
    const one = await client.submit("login alice");
    expect(one.duplicate).toBe(false);
    // Identical events are distinct entries (the log deduplicates by idempotency key).
    const again = await client.submit("login alice");
    expect(again).toMatchObject({ index: one.index + 1, duplicate: false });
    expect(one.submitter).toMatch(/^[0-9a-f]{16}$/);
    const keyed = await client.submit("order 1", { idempotencyKey: "k-1" });
    expect((await client.submit("order 1", { idempotencyKey: "k-1" })).index).toBe(keyed.index);
    expect(codeOf(() => void 0)).toBe("no error");
    await expect(client.submit("order 2", { idempotencyKey: "k-1" })).rejects.toMatchObject({
      code: "CONFLICT",
    });

    const items = Array.from({ length: 2500 }, (_, i) => ({ payload: `event ${i}` }));
    const results = await client.submitBatch(items);
    expect(results).toHaveLength(2500);
    expect(new Set(results.map((r) => r.index)).size).toBe(2500);
    for (const [i, r] of results.entries()) {
      if (i % 97 !== 0) continue;
      const v = verifyReceipt(r.receipt, {
        logKey: log.signer.verifierKey,
        payload: enc(`event ${i}`),
      });
      expect(v).toMatchObject({
        index: r.index,
        id: r.id,
        timestamp: r.timestamp,
        submitter: one.submitter,
        payloadChecked: true,
      });
    }
    const v = verifyReceipt(one.receipt, { logKey: log.signer.verifierKey });
    expect(v.index).toBe(one.index);
    expect(v.leafHash).toEqual(one.leafHash);
  });

  it("refuses a receipt tampered in any part, with the code that says why", async () => {
    const { client, log } = await startServer();
    await client.submitBatch(Array.from({ length: 20 }, (_, i) => ({ payload: `x ${i}` })));
    await client.submit("the entry");
    await client.submitBatch(Array.from({ length: 20 }, (_, i) => ({ payload: `y ${i}` })));
    const r = await client.receipt(20); // index 20 of 41: a full-length path
    expect(r.treeSize).toBe(41);
    const key = log.signer.verifierKey;
    const lines = r.receipt.split("\n");
    const edit = (i: number, f: (line: string) => string) =>
      lines.map((l, k) => (k === i ? f(l) : l)).join("\n");
    const flipB64 = (l: string, at: number) => {
      const bytes = base64Decode(l);
      bytes[at % bytes.length]! ^= 1;
      return base64Encode(bytes);
    };
    const indexLine = lines.findIndex((l) => l.startsWith("index "));
    const extraLine = lines.findIndex((l) => l.startsWith("extra "));
    const hashLine = indexLine + 1;
    const cpStart = lines.indexOf("", indexLine) + 1;
    const sigLine = lines.findIndex((l) => l.startsWith("— "));
    const cases: [string, string, string][] = [
      ["index beyond the tree", edit(indexLine, () => "index 41"), "OUT_OF_RANGE"],
      ["index of a neighbour", edit(indexLine, () => `index ${r.index + 1}`), "PROOF_MISMATCH"],
      ["a proof hash", edit(hashLine, (l) => flipB64(l, 3)), "PROOF_MISMATCH"],
      ["the checkpoint size", edit(cpStart + 1, (l) => String(Number(l) + 1)), "BAD_SIGNATURE"],
      ["the checkpoint root", edit(cpStart + 2, (l) => flipB64(l, 0)), "BAD_SIGNATURE"],
      [
        "the signature",
        edit(sigLine, (l) => l.replace(/ (\S+)$/, (_m, b64: string) => ` ${flipB64(b64, 10)}`)),
        "BAD_SIGNATURE",
      ],
      [
        "the leaf hash in extra",
        // Byte 60 of a version-2 extra is in the leaf hash (after 47 bytes of fields and head).
        edit(extraLine, (l) => `extra ${flipB64(l.slice(6), 60)}`),
        "PROOF_MISMATCH",
      ],
    ];
    for (const [what, text, code] of cases) {
      expect(
        codeOf(() => verifyReceipt(text, { logKey: key })),
        what,
      ).toBe(code);
    }
    // A verifier that remembers checked checkpoints: after the genuine receipt (whose checkpoint
    // it now knows), every tampered one is still refused with the same code.
    const many = receiptVerifier({ logKey: key });
    expect(many(r.receipt).index).toBe(20);
    for (const [what, text, code] of cases) {
      expect(
        codeOf(() => many(text)),
        `${what}, checkpoint remembered`,
      ).toBe(code);
    }
    expect(many(r.receipt, enc("the entry")).payloadChecked).toBe(true);
    expect(verifyReceipt(r.receipt, { logKey: key, payload: enc("the entry") }).index).toBe(20);
    expect(
      codeOf(() => verifyReceipt(r.receipt, { logKey: key, payload: enc("another entry") })),
    ).toBe("PROOF_MISMATCH");
    const otherKey = "example.com/other+12345678+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    expect(["BAD_KEY", "NO_KNOWN_SIGNATURE", "MALFORMED"]).toContain(
      codeOf(() => verifyReceipt(r.receipt, { logKey: otherKey })),
    );
  });

  it("retries on 503 with Retry-After, then succeeds; gives up with the server's code", async () => {
    let calls = 0;
    const fake: typeof fetch = async () => {
      calls++;
      if (calls < 3)
        return new Response(JSON.stringify({ code: "OVERLOADED", detail: "busy" }), {
          status: 503,
          headers: { "Retry-After": "0" },
        });
      return new Response(
        JSON.stringify({
          index: 7,
          id: "x",
          timestamp: 1,
          leafHash: base64Encode(new Uint8Array(32)),
          treeSize: 8,
          checkpoint: "",
          receipt: "",
          duplicate: false,
        }),
        { status: 201 },
      );
    };
    const client = new VellumClient({ url: "http://127.0.0.1:1", fetch: fake });
    expect((await client.submit("a")).index).toBe(7);
    expect(calls).toBe(3);
    const always: typeof fetch = async () =>
      new Response(JSON.stringify({ code: "OVERLOADED", detail: "busy" }), {
        status: 503,
        headers: { "Retry-After": "0" },
      });
    await expect(
      new VellumClient({ url: "http://x", fetch: always, retries: 2 }).submit("a"),
    ).rejects.toMatchObject({ code: "OVERLOADED" });
    await expect(
      new VellumClient({ url: "http://127.0.0.1:1", retries: 0, timeoutMs: 500 }).submit("a"),
    ).rejects.toMatchObject({ code: "NETWORK" });
  });
});

describe("SDK: verifying client", () => {
  it("trusts on first use, then only consistent growth; state persists in a file store", async () => {
    const { client, log } = await startServer();
    const dir = mkdtempSync(join(tmpdir(), "vellum-trust-"));
    const v = new VerifyingClient(client, {
      logKey: log.signer.verifierKey,
      store: new FileTrustedStore(dir),
    });
    await client.submit("a");
    const first = await v.update();
    await client.submitBatch(Array.from({ length: 300 }, (_, i) => ({ payload: `b ${i}` })));
    const second = await v.update();
    expect(second.checkpoint.size).toBeGreaterThan(first.checkpoint.size);
    const r = await client.submit("c");
    await v.verifyInclusion(r.index, r.leafHash);
    // A new client on the same directory continues from what was trusted.
    const again = new VerifyingClient(client, {
      logKey: log.signer.verifierKey,
      store: new FileTrustedStore(dir),
    });
    expect((await again.trusted())?.checkpoint.size).toBeGreaterThanOrEqual(second.checkpoint.size);
    await expect(v.verifyInclusion(r.index, hashLeaf(enc("forged")))).rejects.toMatchObject({
      code: "PROOF_MISMATCH",
    });
  });

  it("catches a split view: two servers with the same key and different histories", async () => {
    const a = await startServer();
    const b = await startServer(); // same test key and origin (test/log/helpers.ts), other entries
    expect(b.log.signer.verifierKey).toBe(a.log.signer.verifierKey);
    for (let i = 0; i < 5; i++) await a.client.submit(`real ${i}`);
    for (let i = 0; i < 9; i++) await b.client.submit(`fake ${i}`);
    const store = new MemoryTrustedStore();
    const key = a.log.signer.verifierKey;
    await new VerifyingClient(a.client, { logKey: key, store }).update();
    const err = await new VerifyingClient(b.client, { logKey: key, store })
      .update()
      .catch((e) => e);
    expect(err.code).toBe("INCONSISTENT");
    // The evidence stands on its own: both checkpoints verify with the log's key, and the
    // proof offered does not connect them.
    const ev = err.evidence as { trusted: string; offered: string; proof: string[] };
    const logKey = verifierFromKey(key);
    const t = openCheckpoint(ev.trusted, logKey).checkpoint;
    const o = openCheckpoint(ev.offered, logKey).checkpoint;
    expect(() =>
      verifyConsistency(
        t.size,
        o.size,
        ev.proof.map((p) => base64Decode(p)),
        t.rootHash,
        o.rootHash,
      ),
    ).toThrow();
  });
});
