/**
 * The access log (src/audit/access.ts): every route that returns entry contents records, before
 * it answers, who read which entries — a test walks every GET route the app registers, so a new
 * route that returns entries without recording (or is not classified here) fails; the record is
 * an OCSF API Activity event in the access log, readable under /access/ with the `audit` scope;
 * and a read whose record cannot be written is refused (503), its entries never sent.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { describe, expect, it } from "vitest";
import { VellumClient } from "../../src/client/http.js";
import { base64Encode } from "../../src/core/bytes.js";
import { decodeLeaf } from "../../src/core/entry.js";
import { apiActivity } from "../audit/events.js";
import { enc, get, openHarness, post } from "./helpers.js";

async function listenOn(app: typeof h.app) {
  const server = await new Promise<ReturnType<typeof serve>>((done) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => done(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

const h = await openHarness({ access: true, index: true, log: { batchMaxAgeMs: 0 } });
const accessLog = h.accessLog!;

// Five entries: three opaque, two events.
const logged: number[] = [];
for (const p of ["one", "two", "three"]) {
  const r = await post(h.app, "/v1/entries", { token: h.tokens.append, body: enc(p) });
  logged.push(((await r.json()) as { index: number }).index);
}
for (const uid of ["alice", "bob"]) {
  const r = await post(h.app, "/v1/events", {
    token: h.tokens.append,
    body: JSON.stringify(
      apiActivity({
        actor: { user: { uid } },
        metadata: { product: { name: "t" }, version: "1.8.0", uid: `access-${uid}` },
      }),
    ),
    headers: { "Content-Type": "application/json" },
  });
  logged.push(((await r.json()) as { index: number }).index);
}
await h.indexer!.catchUp();
const first = (await (await get(h.app, "/v1/entries/0", { token: h.tokens.read })).json()) as {
  id: string;
  leafHash: string;
};

/** The access event the last recorded read wrote. */
// biome-ignore lint/suspicious/noExplicitAny: an access event, read by path in the assertions
async function lastAccess(): Promise<Record<string, any>> {
  const e = await accessLog.entry(accessLog.size - 1);
  return JSON.parse(new TextDecoder().decode(decodeLeaf(e.leaf).payload));
}

const hex = (b64: string) => Buffer.from(b64, "base64").toString("hex");

/** Routes that return entry contents: a request, and the entries it must record. */
const RECORDED: Record<string, { path: () => string; entries: number[] | "some" }> = {
  "/v1/entries": { path: () => "/v1/entries?start=1&limit=2", entries: [1, 2] },
  "/v1/entries/by-id/:id": { path: () => `/v1/entries/by-id/${first.id}`, entries: [0] },
  "/v1/entries/by-leaf-hash/:hash": {
    path: () => `/v1/entries/by-leaf-hash/${hex(first.leafHash)}`,
    entries: [0],
  },
  "/v1/entries/:index/receipt": { path: () => "/v1/entries/2/receipt", entries: [2] },
  "/v1/entries/:index": { path: () => "/v1/entries/3", entries: [3] },
  "/v1/events": { path: () => "/v1/events?actor=alice", entries: "some" },
  "/tile/*": { path: () => "/tile/entries/000.p/5", entries: [0, 1, 2, 3, 4] },
};
/** Routes that return the access log's own records, recorded as `access:N` (audit scope). */
const RECORDED_ACCESS = new Set(["/v1/access"]);
/** Routes that return no entry contents (proofs, hashes, checkpoints, operations, tokens). */
const NOT_CONTENT = new Set([
  "/healthz",
  "/readyz",
  "/metrics",
  "/openapi.json",
  "/docs",
  "/v1/proofs/inclusion",
  "/v1/proofs/consistency",
  "/v1/checkpoints",
  "/v1/checkpoints/:size",
  "/v1/log",
  "/checkpoint",
  "/v1/tokens",
  "/index/checkpoint",
  "/index/tile/*", // the index log's revisions: sizes and roots, public by design
  "/access/checkpoint",
  "/access/index/checkpoint",
  "/access/index/tile/*", // the access index's revisions: public like the index log's
  "/access/tile/*", // the access log itself: recorded like the main log's bundles (below)
]);

describe("the access log", () => {
  it("classifies every GET route: recorded, or returning no entry contents", () => {
    const routes = new Set(h.app.routes.filter((r) => r.method === "GET").map((r) => r.path));
    const unclassified = [...routes].filter(
      (r) => !(r in RECORDED) && !NOT_CONTENT.has(r) && !RECORDED_ACCESS.has(r),
    );
    expect(unclassified).toEqual([]);
  });

  for (const [route, { path, entries }] of Object.entries(RECORDED)) {
    it(`records a read of ${route} before answering it`, async () => {
      const before = accessLog.size;
      const res = await get(h.app, path(), { token: h.tokens.read });
      expect(res.status).toBe(200);
      expect(accessLog.size).toBe(before + 1);
      const event = await lastAccess();
      expect(event).toMatchObject({
        class_uid: 6003,
        activity_id: 2,
        actor: { user: { name: "read only" } },
        api: { operation: `GET ${route}`, request: { uid: res.headers.get("X-Request-Id") } },
      });
      const read = (event.resources as { uid: string }[]).map((r) => r.uid);
      if (entries === "some") {
        expect(read.length).toBeGreaterThan(0);
        expect(read).toContain(`entry:${logged[3]}`); // alice's event
      } else {
        expect(read).toEqual(entries.map((i) => `entry:${i}`));
      }
      expect(event.unmapped.returned).toBe(read.length);
    });
  }

  it("does not record reads of proofs or hash tiles, which hold no entry contents", async () => {
    const before = accessLog.size;
    expect((await get(h.app, "/v1/proofs/inclusion?index=0&size=5")).status).toBe(200);
    expect((await get(h.app, "/tile/0/000.p/5")).status).toBe(200);
    expect(accessLog.size).toBe(before);
  });

  it("serves the access log under /access/, its entries to the audit scope only", async () => {
    const cp = await (await get(h.app, "/access/checkpoint")).text();
    expect(cp.split("\n")[0]).toBe(`${h.log.origin}/access`);
    const n = accessLog.size;
    const path = `/access/tile/entries/000.p/${n}`;
    expect((await get(h.app, path, { token: h.tokens.read })).status).toBe(403);
    const before = accessLog.size;
    const res = await get(h.app, path, { token: h.tokens.audit! });
    expect(res.status).toBe(200);
    // Reading the access log is itself recorded there, as reads of access records.
    expect(accessLog.size).toBe(before + 1);
    const last = await lastAccess();
    expect(last.actor.user.name).toBe("auditor");
    expect(last.resources.map((r: { uid: string }) => r.uid)).toEqual(
      Array.from({ length: n }, (_, i) => `access:${i}`),
    );
  });

  it("answers who read an entry and what a token read, proven, and records that too", async () => {
    const server = await listenOn(h.app);
    try {
      const logKey = h.accessLog!.signer.verifierKey;
      const auditor = new VellumClient({ url: server.url, token: h.tokens.audit! });
      const reader = new VellumClient({ url: server.url, token: h.tokens.read });
      await reader.entry(4);
      await reader.entry(4);
      await h.accessIndexer!.catchUp();
      const who = await auditor.query({ resource: "entry:4" }, { logKey, log: "access" });
      expect(who.complete).toBe(true);
      const readers = who.entries.map((e) => JSON.parse(new TextDecoder().decode(e.payload)));
      expect(
        readers.filter((r) => r.actor.user.name === "read only").length,
      ).toBeGreaterThanOrEqual(2);
      const readOnlyId = readers.find((r) => r.actor.user.name === "read only").actor.user.uid;
      const what = await auditor.query({ actor: readOnlyId }, { logKey, log: "access" });
      expect(what.entries.length).toBeGreaterThanOrEqual(readers.length);
      // The auditor's own question is in the access log, as a read of access records.
      const last = await lastAccess();
      expect(last.api.operation).toBe("GET /v1/access");
      expect(last.actor.user.name).toBe("auditor");
      expect(last.resources[0].uid).toMatch(/^access:\d+$/);
      // A read token may not ask.
      await expect(
        reader.query({ resource: "entry:4" }, { logKey, log: "access" }),
      ).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
    } finally {
      await server.close();
    }
  });

  it("refuses a read it cannot record, and sends none of the entry", async () => {
    const faults = h.db.faults;
    faults.write = (namespace) => (namespace === "access-log" ? "fail" : "ok");
    try {
      const res = await get(h.app, "/v1/entries/0", { token: h.tokens.read });
      expect(res.status).toBe(503);
      const body = await res.text();
      expect(body).toMatch(/could not be recorded in the access log/);
      expect(body).not.toContain(base64Encode(enc("one")));
    } finally {
      faults.write = undefined;
    }
  });
});
