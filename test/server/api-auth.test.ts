/**
 * The HTTP API in process (`app.request`, no network), one route group per file: Who may call what: every protected route needs its scope, public routes need none, and publicReads.
 * Checked against what the verifier library and first-principles recomputation say; errors are
 * asserted by their stable `code`, never by message.
 */

import { beforeAll, describe, expect, it } from "vitest";
import { encodeEntryBundle } from "../../src/core/tiles.js";
import { apiActivity } from "../audit/events.js";
import { logInfo, MAX_PAYLOAD } from "./app-fixtures.js";
import {
  type Body,
  b64,
  b64url,
  bodyBytes,
  call,
  enc,
  expectProblem,
  get,
  type Harness,
  hex,
  openHarness,
  post,
} from "./helpers.js";

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
    name: "POST /v1/events",
    scope: "append",
    ok: 201,
    make: async () => ({
      method: "POST",
      path: "/v1/events",
      json: true,
      body: () =>
        JSON.stringify(
          apiActivity({
            metadata: { product: { name: "auth" }, version: "1.8.0", uid: `auth-${unique++}` },
          }),
        ),
    }),
  },
  {
    name: "POST /v1/events/batch",
    scope: "append",
    ok: 200,
    make: async () => ({
      method: "POST",
      path: "/v1/events/batch",
      json: true,
      body: () =>
        JSON.stringify({
          events: [
            apiActivity({
              metadata: { product: { name: "auth" }, version: "1.8.0", uid: `auth-${unique++}` },
            }),
          ],
        }),
    }),
  },
  {
    name: "GET /v1/events (a time window)",
    scope: "read",
    ok: 200,
    make: async () => ({ method: "GET", path: "/v1/events?from=0&to=99999999999999" }),
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
