/**
 * Tokens through the server's HTTP API (the hono app, in process, over the memory driver): a
 * second token with the name of one that still works is 409 CONFLICT (revoking frees the name);
 * a token with `expires` works until then and is 401 after, saying it expired; the last-used time
 * is exact in the list and stored at most once a minute per token (counted writes, a clock the
 * test moves, and a reopened store that shows what was stored).
 */
import { describe, expect, it } from "vitest";
import { TokenStore } from "../../src/auth/tokens.js";
import { createApp } from "../../src/server/app.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import type { KeyValueStore } from "../../src/storage/types.js";
import { openMemoryLog } from "../log/helpers.js";
import { expectJson, expectProblem, get, postJson } from "../server/helpers.js";

interface TokenJson {
  id: string;
  name: string;
  token?: string;
  expires: number | null;
  revoked: number | null;
  lastUsed: number | null;
}

async function setUp() {
  const db = new MemoryDatabase();
  const { log } = await openMemoryLog(db);
  const clock = { now: 1_800_000_000_000 };
  const kv = db.namespace("tokens");
  let writes = 0;
  // The store's namespace, with its writes counted.
  const counted = new Proxy(kv, {
    get(target, property) {
      if (property === "write") {
        return (...args: Parameters<KeyValueStore["write"]>) => {
          writes++;
          return target.write(...args);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const tokens = await TokenStore.open(counted, { now: () => clock.now });
  const admin = (await tokens.create("admin", ["admin", "read"])).token;
  const app = createApp({ log, tokens });
  const list = async () =>
    (await expectJson<{ tokens: TokenJson[] }>(await get(app, "/v1/tokens", { token: admin }), 200))
      .tokens;
  const create = (body: unknown) => postJson(app, "/v1/tokens", body, { token: admin });
  return { db, kv, app, tokens, admin, clock, list, create, writes: () => writes };
}

describe("token names", () => {
  it("a name in use is refused with 409 CONFLICT; revoking the token frees it", async () => {
    const s = await setUp();
    const first = await expectJson<TokenJson>(
      await s.create({ name: "ingest", scopes: ["append"] }),
      201,
    );
    const again = await expectProblem(
      await s.create({ name: "ingest", scopes: ["read"] }),
      409,
      "CONFLICT",
    );
    expect(again.detail).toContain(`a token named "ingest" exists (id ${first.id})`);
    expect((await s.list()).filter((t) => t.name === "ingest")).toHaveLength(1);
    await expectJson(
      await postJson(s.app, `/v1/tokens/${first.id}/revoke`, {}, { token: s.admin }),
      200,
    );
    await expectJson(await s.create({ name: "ingest", scopes: ["append"] }), 201);
    expect((await s.list()).filter((t) => t.name === "ingest")).toHaveLength(2);
  });
});

describe("token expiry", () => {
  it("works until `expires`, then is refused with 401 saying it expired; its name is free again", async () => {
    const s = await setUp();
    const expires = s.clock.now + 30 * 86_400_000;
    const made = await expectJson<TokenJson>(
      await s.create({ name: "auditor", scopes: ["read"], expires }),
      201,
    );
    expect(made.expires).toBe(expires);
    await expectJson(await get(s.app, "/v1/log", { token: made.token! }), 200);
    await expectJson(await get(s.app, "/v1/entries?start=0", { token: made.token! }), 200);
    s.clock.now = expires - 1;
    await expectJson(await get(s.app, "/v1/entries?start=0", { token: made.token! }), 200);
    s.clock.now = expires;
    const refused = await expectProblem(
      await get(s.app, "/v1/entries?start=0", { token: made.token! }),
      401,
      "UNAUTHENTICATED",
    );
    expect(refused.detail).toContain("expired at ");
    // An unknown token's answer does not change.
    const unknown = await expectProblem(
      await get(s.app, "/v1/entries?start=0", { token: `vellum_${"A".repeat(43)}` }),
      401,
      "UNAUTHENTICATED",
    );
    expect(unknown.detail).toBe("the bearer token is not valid (unknown, revoked or malformed)");
    expect((await s.list()).find((t) => t.id === made.id)!.expires).toBe(expires);
    await expectJson(await s.create({ name: "auditor", scopes: ["read"] }), 201);
  });

  it("an expiry that is not in the future, or not a number, is refused and creates nothing", async () => {
    const s = await setUp();
    const before = (await s.list()).length;
    await expectProblem(
      await s.create({ name: "a", scopes: ["read"], expires: s.clock.now }),
      400,
      "MALFORMED",
    );
    await expectProblem(
      await s.create({ name: "b", scopes: ["read"], expires: "30d" }),
      400,
      "BAD_REQUEST",
    );
    expect((await s.list()).length).toBe(before);
    const never = await expectJson<TokenJson>(
      await s.create({ name: "c", scopes: ["read"], expires: null }),
      201,
    );
    expect(never.expires).toBeNull();
  });
});

describe("last used", () => {
  it("is exact in the list, and written at most once a minute per token", async () => {
    const s = await setUp();
    const made = await expectJson<TokenJson>(
      await s.create({ name: "reader", scopes: ["read"] }),
      201,
    );
    expect(made.lastUsed).toBeNull();
    const use = () => get(s.app, "/v1/entries?start=0", { token: made.token! });
    const stored = async () => (await TokenStore.open(s.kv)).lastUsed(made.id);

    const t0 = s.clock.now;
    let writes = s.writes();
    await expectJson(await use(), 200);
    expect(s.writes() - writes).toBe(1);
    await expect.poll(stored).toBe(t0);

    // Many requests within the minute: exact in memory, no write.
    writes = s.writes();
    for (let i = 1; i <= 20; i++) {
      s.clock.now = t0 + i * 2_000;
      await expectJson(await use(), 200);
    }
    expect(s.writes()).toBe(writes);
    expect((await s.list()).find((t) => t.id === made.id)!.lastUsed).toBe(t0 + 40_000);
    expect(await stored()).toBe(t0);

    // A minute after the last write: written again.
    s.clock.now = t0 + 60_000;
    await expectJson(await use(), 200);
    expect(s.writes()).toBe(writes + 1);
    await expect.poll(stored).toBe(t0 + 60_000);
    // The admin token's own use (the list calls) is tracked the same way.
    expect((await s.list()).find((t) => t.name === "admin")!.lastUsed).toBe(t0 + 60_000);
  });
});
