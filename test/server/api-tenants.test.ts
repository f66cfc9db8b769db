/**
 * Tenant-limited read tokens: a token created with tenants reads, in JSON, only its tenants'
 * events (another tenant's event, or an opaque entry, is 403; a page shows only its own), is
 * refused raw entry bundles and time windows, and must query by one of its tenants — whose
 * list the answer proves, so the SDK verifies it and it holds nothing of another tenant; its
 * limits are recorded with each read in the access log.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, describe, expect, it } from "vitest";
import { VellumClient } from "../../src/client/http.js";
import { decodeLeaf } from "../../src/core/entry.js";
import { apiActivity } from "../audit/events.js";
import { enc, expectJson, get, openHarness, post } from "./helpers.js";

const h = await openHarness({ access: true, index: true, log: { batchMaxAgeMs: 0 } });
const created = await expectJson<{ token: string; tenants: string[] }>(
  await post(h.app, "/v1/tokens", {
    token: h.tokens.admin,
    body: JSON.stringify({ name: "acme reader", scopes: ["read"], tenants: ["acme"] }),
    headers: { "Content-Type": "application/json" },
  }),
  201,
);
const acme = created.token;

const logged: Record<string, number> = {};
for (const [name, tenant] of [
  ["a1", "acme"],
  ["g1", "globex"],
  ["a2", "acme"],
] as const) {
  const event = apiActivity({
    actor: { user: { uid: "alice" } },
    metadata: { product: { name: "t" }, version: "1.8.0", uid: `t-${name}`, tenant_uid: tenant },
  });
  const r = await post(h.app, "/v1/events", {
    token: h.tokens.append,
    body: JSON.stringify(event),
    headers: { "Content-Type": "application/json" },
  });
  logged[name] = ((await r.json()) as { index: number }).index;
}
logged.opaque = (
  (await (
    await post(h.app, "/v1/entries", { token: h.tokens.append, body: enc("opaque") })
  ).json()) as {
    index: number;
  }
).index;
await h.indexer!.catchUp();

const server = await new Promise<ReturnType<typeof serve>>((done) => {
  const s = serve({ fetch: h.app.fetch, port: 0, hostname: "127.0.0.1" }, () => done(s));
});
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
afterAll(() => new Promise<void>((done) => server.close(() => done())));

describe("tenant-limited read tokens", () => {
  it("are created with their tenants, listed with them", async () => {
    expect(created.tenants).toEqual(["acme"]);
    const list = await expectJson<{ tokens: { name: string; tenants: string[] | null }[] }>(
      await get(h.app, "/v1/tokens", { token: h.tokens.admin }),
      200,
    );
    expect(list.tokens.find((t) => t.name === "acme reader")?.tenants).toEqual(["acme"]);
    expect(list.tokens.find((t) => t.name === "read only")?.tenants).toBeNull();
  });

  it("read their tenants' events only", async () => {
    expect((await get(h.app, `/v1/entries/${logged.a1}`, { token: acme })).status).toBe(200);
    for (const other of [logged.g1, logged.opaque]) {
      const res = await get(h.app, `/v1/entries/${other}`, { token: acme });
      expect(res.status).toBe(403);
      expect(await res.text()).toMatch(/reads only the events of \\"acme\\"/);
      expect((await get(h.app, `/v1/entries/${other}/receipt`, { token: acme })).status).toBe(403);
    }
    const page = await expectJson<{ entries: { index: number }[] }>(
      await get(h.app, "/v1/entries?start=0&limit=100", { token: acme }),
      200,
    );
    expect(page.entries.map((e) => e.index)).toEqual([logged.a1, logged.a2]);
  });

  it("are refused entry bundles and time windows", async () => {
    expect((await get(h.app, "/tile/entries/000.p/4", { token: acme })).status).toBe(403);
    expect((await get(h.app, "/v1/events?from=0&to=99999999999999", { token: acme })).status).toBe(
      403,
    );
    expect((await get(h.app, "/v1/events?actor=alice", { token: acme })).status).toBe(403);
    expect((await get(h.app, "/v1/events?tenant=globex", { token: acme })).status).toBe(403);
  });

  it("query by their tenant: proven, nothing of another tenant", async () => {
    const logKey = h.log.signer.verifierKey;
    const client = new VellumClient({ url, token: acme });
    const r = await client.query({ tenant: "acme", actor: "alice" }, { logKey, limit: 1 });
    expect(r.complete).toBe(true);
    expect(r.key).toEqual({ kind: "tenant", value: "acme" });
    expect(r.entries.map((e) => e.index)).toEqual([logged.a1, logged.a2]);
    // Nothing else is in the answer: no boundary entries, and time bounds are refused.
    const raw = await expectJson<{ window: { leaves: unknown[] }; leaves: { index: number }[] }>(
      await get(h.app, "/v1/events?tenant=acme", { token: acme }),
      200,
    );
    expect(raw.window.leaves).toEqual([]);
    expect(raw.leaves.map((l) => l.index)).toEqual([logged.a1, logged.a2]);
    expect((await get(h.app, "/v1/events?tenant=acme&from=0&to=5", { token: acme })).status).toBe(
      403,
    );
  });

  it("have their limits recorded with each read", async () => {
    await get(h.app, `/v1/entries/${logged.a2}`, { token: acme });
    const e = await h.accessLog!.entry(h.accessLog!.size - 1);
    const event = JSON.parse(new TextDecoder().decode(decodeLeaf(e.leaf).payload));
    expect(event.unmapped.tenants).toEqual(["acme"]);
    expect(event.actor.user.name).toBe("acme reader");
  });
});
