/**
 * @module
 * Bearer tokens (admin scope): list, create (the secret is shown once), revoke.
 */
import { Hono } from "hono";
import { SCOPES, type Scope, type TokenInfo } from "../../auth/tokens.js";
import { type Env, json, type RouteContext, readJson } from "../http.js";
import { HttpProblem } from "../problem.js";

export function tokenRoutes(ctx: RouteContext): Hono<Env> {
  const { tokens, requireScope, bodies } = ctx;
  const app = new Hono<Env>();

  const tokenJson = (t: TokenInfo) => ({
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    created: t.created,
    expires: t.expires ?? null,
    revoked: t.revoked ?? null,
    lastUsed: tokens.lastUsed(t.id) ?? null,
    tenants: t.tenants ?? null,
  });
  app.get("/v1/tokens", requireScope("admin"), (c) =>
    json(c, { tokens: tokens.list().map(tokenJson) }),
  );
  app.post("/v1/tokens", requireScope("admin"), async (c) => {
    const body = (await readJson(
      c,
      4096,
      bodies,
      { maxTokens: 4096 },
      'send JSON: {"name": "...", "scopes": ["append", "read"], "expires": null}',
    )) as { name?: unknown; scopes?: unknown; expires?: unknown; tenants?: unknown } | null;
    const { name, scopes, expires, tenants } = body ?? {};
    if (
      typeof name !== "string" ||
      !Array.isArray(scopes) ||
      !scopes.every((s) => SCOPES.includes(s))
    ) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `"name" must be a string and "scopes" a list of ${SCOPES.join(", ")}`,
      );
    }
    if (expires !== undefined && expires !== null && typeof expires !== "number") {
      throw new HttpProblem(
        "BAD_REQUEST",
        '"expires" must be a time in milliseconds since the epoch, or null',
      );
    }
    if (
      tenants !== undefined &&
      tenants !== null &&
      !(Array.isArray(tenants) && tenants.every((t) => typeof t === "string"))
    ) {
      throw new HttpProblem("BAD_REQUEST", '"tenants" must be a list of tenant ids, or null');
    }
    const { token, info } = await tokens.create(name, scopes as Scope[], {
      ...(typeof expires === "number" ? { expires } : {}),
      ...(Array.isArray(tenants) ? { tenants: tenants as string[] } : {}),
    });
    return json(c, { token, ...tokenJson(info) }, 201);
  });
  app.post("/v1/tokens/:id/revoke", requireScope("admin"), async (c) =>
    json(c, tokenJson(await tokens.revoke(c.req.param("id")))),
  );

  return app;
}
