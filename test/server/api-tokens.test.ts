/**
 * The HTTP API in process (`app.request`, no network), one route group per file: The token routes: an admin creates, lists and revokes tokens; bad requests by code.
 * Checked against what the verifier library and first-principles recomputation say; errors are
 * asserted by their stable `code`, never by message.
 */
import { describe, expect, it } from "vitest";
import { expectJson, expectProblem, get, openHarness, post, postJson } from "./helpers.js";

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
