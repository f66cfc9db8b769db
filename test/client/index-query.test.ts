/**
 * The verifiable index end to end (client.query against a real server on 127.0.0.1): events in,
 * queries out and verified, oldest or newest first, across pages; and every way a server can lie
 * — a missing, extra, reordered or altered result, a wrong count, a revision for another tree, a
 * forged index-log leaf — refused by the SDK.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, describe, expect, it } from "vitest";
import { VellumClient } from "../../src/client/http.js";
import { base64Decode, base64Encode } from "../../src/core/bytes.js";
import { apiActivity, authentication } from "../audit/events.js";
import { openHarness } from "../server/helpers.js";

const h = await openHarness({ index: true, log: { batchMaxAgeMs: 0 } });
const server = await new Promise<ReturnType<typeof serve>>((done) => {
  const s = serve({ fetch: h.app.fetch, port: 0, hostname: "127.0.0.1" }, () => done(s));
});
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const client = new VellumClient({ url, token: h.tokens.all });
afterAll(async () => {
  await new Promise<void>((done) => server.close(() => done()));
  await h.indexer?.close();
});

const actors = ["alice", "bob", "carol"];
const events = Array.from({ length: 30 }, (_, i) =>
  apiActivity({
    time: 1_764_748_800_000 + i,
    actor: { user: { uid: actors[i % 3] } },
    api: { operation: i % 2 === 0 ? "ReadInvoice" : "UpdateInvoice" },
    resources: [{ uid: `invoice-${i % 5}` }],
    metadata: { product: { name: "billing" }, version: "1.8.0", uid: `q-${i}`, tenant_uid: "acme" },
  }),
);
// In batches a few milliseconds apart, so that time windows can split them.
const results: Awaited<ReturnType<typeof client.eventBatch>> = [];
for (let i = 0; i < events.length; i += 5) {
  results.push(...(await client.eventBatch(events.slice(i, i + 5))));
  await new Promise((r) => setTimeout(r, 3));
}
await client.event(authentication({ metadata: { product: { name: "sso" }, version: "1.8.0" } }));
// Wait until the index covers the log.
for (let i = 0; h.indexer!.lag > 0 || h.indexer!.published === undefined; i++) {
  if (i > 400) throw new Error("the index did not catch up");
  await new Promise((r) => setTimeout(r, 5));
}
const logKey = (await client.logInfo()).verifierKey as string;
const indexOf = (n: number) => results[n]!.index;

describe("client.query (the verifiable index)", () => {
  it("answers one key's events, complete, oldest or newest first, across pages", async () => {
    const want = [0, 3, 6, 9, 12, 15, 18, 21, 24, 27].map(indexOf);
    const all = await client.query({ actor: "alice" }, { logKey });
    expect(all.complete).toBe(true);
    expect(all.entries.map((e) => e.index)).toEqual(want);
    const paged = await client.query({ actor: "alice" }, { logKey, limit: 3 });
    expect(paged.entries.map((e) => e.index)).toEqual(want);
    const newest = await client.query({ actor: "alice" }, { logKey, limit: 4, order: "desc" });
    expect(newest.entries.map((e) => e.index)).toEqual([...want].reverse());
  });

  it("narrows by time window and by more keys (filtered on the client)", async () => {
    // Windows are of log timestamps (a batch shares one millisecond or a few).
    const from = results[5]!.timestamp;
    const to = results[20]!.timestamp;
    const inWindow = (n: number) => results[n]!.timestamp >= from && results[n]!.timestamp < to;
    const all = Array.from({ length: 30 }, (_, n) => n);
    const r = await client.query(
      { actor: "alice", resource: "invoice-1" },
      { logKey, from, to, limit: 2 },
    );
    const want = all.filter((n) => inWindow(n) && n % 3 === 0 && n % 5 === 1);
    expect(want).toEqual([6]);
    expect(r.entries.map((e) => e.index)).toEqual(want.map(indexOf));
    const actions = await client.query({ action: "Logon" }, { logKey });
    expect(actions.entries).toHaveLength(1);
    const tenant = await client.query({ tenant: "acme" }, { logKey, from, to });
    expect(all.filter(inWindow)).toHaveLength(15);
    expect(tenant.entries.map((e) => e.index)).toEqual(all.filter(inWindow).map(indexOf));
    expect(tenant.entries.every((e) => e.timestamp >= from && e.timestamp < to)).toBe(true);
  });

  it("proves a key absent", async () => {
    const r = await client.query({ actor: "mallory" }, { logKey });
    expect(r.entries).toEqual([]);
    expect(r.complete).toBe(true);
  });

  it("serves the index log as tlog-tiles under /index/", async () => {
    const res = await fetch(`${url}/index/checkpoint`);
    expect(res.status).toBe(200);
    expect((await res.text()).startsWith(`${(await client.logInfo()).origin}/index\n`)).toBe(true);
    const tile = await fetch(`${url}/index/tile/0/000.p/1`);
    expect(tile.status).toBe(200);
  });

  describe("refuses a server that lies", () => {
    // biome-ignore lint/suspicious/noExplicitAny: the tampering reaches anywhere in the answer
    type Answer = Record<string, any>;
    const tampered = (edit: (a: Answer) => void) =>
      new VellumClient({
        url,
        token: h.tokens.all,
        fetch: async (input, init) => {
          const res = await fetch(input, init);
          if (!String(input).includes("/v1/events?")) return res;
          const a = (await res.json()) as Answer;
          edit(a);
          return new Response(JSON.stringify(a), { status: res.status, headers: res.headers });
        },
      });
    const flip = (b64: string) => {
      const bytes = base64Decode(b64);
      bytes[bytes.length - 1]! ^= 1;
      return base64Encode(bytes);
    };
    const cases: [string, (a: Answer) => void, RegExp][] = [
      ["a missing result", (a) => a.leaves.pop(), /not the ones the key's list holds/],
      [
        "an extra result",
        (a) => a.leaves.push({ index: a.leaves[0].index + 1, leaf: a.leaves[0].leaf }),
        /not the ones the key's list holds/,
      ],
      ["reordered results", (a) => a.leaves.reverse(), /not the ones|multiproof/],
      ["an altered result", (a) => (a.leaves[0].leaf = flip(a.leaves[0].leaf)), /./],
      ["a wrong count", (a) => (a.count += 1), /another count or list|list size/],
      ["a shortened run", (a) => (a.run.end -= 1), /./],
      [
        "a revision for another tree",
        (a) => {
          a.treeSize -= 1;
          a.window.end = Math.min(a.window.end, a.treeSize);
        },
        /./,
      ],
      ["a forged index-log leaf", (a) => (a.revision.leaf = flip(a.revision.leaf)), /./],
      [
        "a forged map proof",
        (a) => (a.revision.map.siblings[0] = flip(a.revision.map.siblings[0])),
        /map/,
      ],
    ];
    for (const [what, edit, message] of cases) {
      it(`refuses ${what}`, async () => {
        await expect(tampered(edit).query({ actor: "alice" }, { logKey })).rejects.toThrow(message);
      });
    }

    it("refuses a bounded window without the boundary entries that place it", async () => {
      const from = results[5]!.timestamp;
      const to = results[20]!.timestamp;
      const honest = await client.query({ actor: "alice" }, { logKey, from, to });
      expect(honest.entries.length).toBeGreaterThan(0);
      const dropped = tampered((a) => {
        a.window.leaves = [];
        a.window.multiproof = [];
      });
      await expect(dropped.query({ actor: "alice" }, { logKey, from, to })).rejects.toThrow(
        /must carry leaves/,
      );
      // Nor can a bounded window pass for the whole tree.
      const widened = tampered((a) => {
        a.window.leaves = [];
        a.window.multiproof = [];
        a.window.start = 0;
        a.window.end = a.treeSize;
      });
      await expect(widened.query({ actor: "alice" }, { logKey, from, to })).rejects.toThrow();
      // Nor can an answer to "everything" quietly end its window early.
      const cut = tampered((a) => {
        a.to = to;
      });
      await expect(cut.query({ actor: "alice" }, { logKey })).rejects.toThrow(
        /another window|must carry leaves/,
      );
    });
  });
});
