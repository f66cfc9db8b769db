/**
 * The SDK's structured events (client.event, client.eventBatch) against a real server on
 * 127.0.0.1: receipts that verify offline for the event's canonical bytes, the original on a
 * resend, the field named on a refusal.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, describe, expect, it } from "vitest";
import { canonicalBytes } from "../../src/audit/canonical.js";
import { VellumClient } from "../../src/client/http.js";
import { receiptVerifier } from "../../src/client/receipts.js";
import { apiActivity, authentication } from "../audit/events.js";
import { openHarness } from "../server/helpers.js";

const h = await openHarness();
const server = await new Promise<ReturnType<typeof serve>>((done) => {
  const s = serve({ fetch: h.app.fetch, port: 0, hostname: "127.0.0.1" }, () => done(s));
});
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const client = new VellumClient({ url, token: h.tokens.all });
afterAll(async () => {
  await new Promise<void>((done) => server.close(() => done()));
});

describe("client events", () => {
  it("logs an event whose receipt verifies for its canonical bytes; a resend is the original", async () => {
    const event = apiActivity({
      metadata: { product: { name: "sdk" }, version: "1.8.0", uid: "sdk-1" },
    });
    const r = await client.event(event);
    expect(r.duplicate).toBe(false);
    const verify = receiptVerifier({ logKey: (await client.logInfo()).verifierKey as string });
    expect(verify(r.receipt, canonicalBytes(event)).index).toBe(r.index);
    expect(() => verify(r.receipt, canonicalBytes({ ...event, severity_id: 2 }))).toThrow();
    const again = await client.event(Object.fromEntries(Object.entries(event).reverse()));
    expect(again).toMatchObject({ index: r.index, duplicate: true });
  });

  it("logs a batch in order, and names the field of an invalid event", async () => {
    const events = [1, 2, 3].map((n) =>
      authentication({
        metadata: { product: { name: "sso" }, version: "1.8.0", uid: `sdk-b${n}` },
      }),
    );
    const results = await client.eventBatch(events);
    expect(results.map((r) => r.index)).toEqual([
      results[0]!.index,
      results[0]!.index + 1,
      results[0]!.index + 2,
    ]);
    const refused = client.event(apiActivity({ time: "noon" }));
    await expect(refused).rejects.toMatchObject({ code: "INVALID_EVENT" });
    await expect(refused).rejects.toThrowError(/\/time: must be an integer/);
  });
});

describe("client.window", () => {
  it("returns every entry of a time window, proven, across pages", async () => {
    const logKey = (await client.logInfo()).verifierKey as string;
    const size = ((await client.logInfo()).treeSize as number) ?? 0;
    const whole = await client.window(0, 99_999_999_999_999, { logKey });
    expect(whole.complete).toBe(true);
    expect(whole.entries.map((e) => e.index)).toEqual(
      Array.from({ length: whole.treeSize }, (_, i) => i),
    );
    expect(whole.treeSize).toBeGreaterThanOrEqual(size);
    const paged = await client.window(0, 99_999_999_999_999, { logKey, limit: 2 });
    expect(paged.entries.map((e) => e.index)).toEqual(whole.entries.map((e) => e.index));
    const none = await client.window(0, 1, { logKey });
    expect(none.entries).toEqual([]);
  });

  it("refuses an answer that drops an entry or serves another window", async () => {
    const logKey = (await client.logInfo()).verifierKey as string;
    /** The answer's shape, loosely: what the tampering below changes. */
    type Answer = { to: number; proof: { start: number; pageStart: number; leaves: unknown[] } };
    const tamper = (edit: (a: Answer) => void) =>
      new VellumClient({
        url,
        token: h.tokens.all,
        fetch: async (input, init) => {
          const res = await fetch(input, init);
          if (!String(input).includes("/v1/events?")) return res;
          const a = (await res.json()) as Answer;
          edit(a);
          return new Response(JSON.stringify(a), {
            status: 200,
            headers: { "Content-Type": "application/json" },
          });
        },
      });
    const dropped = tamper((a) => a.proof.leaves.splice(1, 1));
    await expect(dropped.window(0, 99_999_999_999_999, { logKey })).rejects.toMatchObject({
      code: "INCONSISTENT",
    });
    const shifted = tamper((a) => {
      a.proof.start += 1;
      a.proof.pageStart += 1;
      a.proof.leaves.shift();
    });
    await expect(shifted.window(0, 99_999_999_999_999, { logKey })).rejects.toMatchObject({
      code: "INCONSISTENT",
    });
    const other = tamper((a) => {
      a.to = 5;
    });
    await expect(other.window(0, 99_999_999_999_999, { logKey })).rejects.toMatchObject({
      code: "INCONSISTENT",
    });
  });
});
