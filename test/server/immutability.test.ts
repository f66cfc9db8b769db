/**
 * "No update, no delete": the API has no way to change or remove an entry. Every path the app
 * serves (taken from `app.routes`, parameters filled with real values) and some it does not are
 * sent every method a client can send, with the most powerful token and with none; a method not
 * registered for the path answers 404 or 405 (with an `Allow` header naming exactly the
 * registered methods). Afterwards the checkpoint, every entry, every tile and the log's raw
 * storage are byte-for-byte what they were, and storage saw no write at all.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { formatTilePath, tilesForSize } from "../../src/core/tiles.js";
import { namespacePrefix } from "../../src/storage/namespace.js";
import {
  allEntries,
  b64,
  b64url,
  bodyBytes,
  enc,
  expectJson,
  expectProblem,
  get,
  type Harness,
  hex,
  openHarness,
  post,
  postJson,
  readProblem,
} from "./helpers.js";

/** Methods `new Request()` accepts; TRACE, CONNECT and TRACK are sent via {@link ForcedMethod}. */
const METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
  "PROPFIND",
  "PROPPATCH",
  "MKCOL",
  "COPY",
  "MOVE",
  "LOCK",
  "UNLOCK",
  "PURGE",
  "LINK",
  "UNLINK",
  "REPORT",
  "SEARCH",
  "QUERY",
  "MERGE",
];
/** Methods the fetch standard forbids in `new Request()`, yet a raw HTTP client can send. */
const FORBIDDEN_IN_FETCH = ["TRACE", "CONNECT", "TRACK"];

/**
 * A Request whose method is one the fetch standard refuses to construct. @hono/node-server
 * hands such requests to the app the same way (its request object reports the wire method).
 */
class ForcedMethod extends Request {
  constructor(url: string, method: string, headers: Record<string, string>) {
    super(url, { method: "GET", headers });
    Object.defineProperty(this, "method", { value: method });
  }
}

const UNKNOWN_PATHS = [
  "/",
  "/v1",
  "/v1/",
  "/v2/entries",
  "/v1/entry",
  "/v1/entries/0/payload",
  "/v1/entries/by-id",
  "/v1/checkpoints",
  "/v1/tokens/0123456789abcdef",
  "/v1/tokens/0123456789abcdef/delete",
  "/checkpoint/",
  "/checkpoints",
  "/admin",
  "/.env",
  "/tiles/0/000",
];

/**
 * The methods registered for a concrete path (GET implies HEAD), from the route patterns, read
 * as hono reads them: `:name` is one non-empty segment, a trailing `/*` is anything or nothing.
 */
function registered(routes: readonly { method: string; path: string }[], path: string): string[] {
  const out = new Set<string>();
  for (const r of routes) {
    if (r.method === "ALL") continue; // middleware
    const re = new RegExp(
      `^${r.path
        .split("/")
        .map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
        .join("/")
        .replace(/\/\*$/, "(?:/.*)?")}$`,
    );
    if (re.test(path)) {
      out.add(r.method);
      if (r.method === "GET") out.add("HEAD");
    }
  }
  return [...out].sort();
}

/** Everything a client can observe of the log, plus its raw storage. */
async function snapshot(h: Harness) {
  const checkpoint = await (await get(h.app, "/checkpoint")).text();
  const entries = await allEntries(h.app, h.tokens.read);
  const tiles: Record<string, string> = {};
  for (const tile of tilesForSize(h.log.size)) {
    const path = `/${formatTilePath(tile)}`;
    tiles[path] = hex(await bodyBytes(await get(h.app, path, { token: h.tokens.read })));
  }
  const checkpoints: Record<number, string> = {};
  for (const size of [0, 1, 7, h.log.size]) {
    checkpoints[size] = await (await get(h.app, `/v1/checkpoints/${size}`)).text();
  }
  const prefix = hex(namespacePrefix("log"));
  const storage = h.db
    .snapshot()
    .entries.map(([k, v]) => `${hex(k)}=${hex(v)}`)
    .filter((kv) => kv.startsWith(prefix));
  return { checkpoint, entries, tiles, checkpoints, storage };
}

describe("no update, no delete", () => {
  let h: Harness;
  let concretePaths: string[];

  beforeAll(async () => {
    // A token's last-used time is the one thing a request may store (src/server/tokens.ts): here
    // it is stored on first use only, so that every write counted below would be the log's.
    h = await openHarness({ tokenStore: { lastUsedWriteMs: Number.POSITIVE_INFINITY } });
    // Published sizes 1, 7 and 300: full and partial tiles, several checkpoints.
    let n = 0;
    for (const count of [1, 6, 293]) {
      const entries = Array.from({ length: count }, () => ({ payload: b64(enc(`entry ${n++}`)) }));
      await expectJson(
        await postJson(h.app, "/v1/entries/batch", { entries }, { token: h.tokens.append }),
        200,
      );
    }
    expect(h.log.size).toBe(300);
    const first = await h.log.entry(0);
    // Concrete values for every route parameter; a new parameter name fails here on purpose.
    const values: Record<string, string[]> = {
      index: ["0", "299"],
      size: ["7", "300"],
      id: [first.id, "0123456789abcdef"],
      hash: [b64url(first.leafHash)],
    };
    const wildcard: Record<string, string[]> = {
      "/*": ["/no/such/route"],
      "/tile/*": [
        "/tile/0/000",
        "/tile/0/001.p/44",
        "/tile/1/000.p/1",
        "/tile/entries/000",
        "/tile/entries/001.p/44",
        "/tile/0/009",
        "/tile/bad",
        "/tile",
      ],
    };
    const paths = new Set<string>();
    for (const pattern of new Set(h.app.routes.map((r) => r.path))) {
      if (wildcard[pattern] !== undefined) {
        for (const p of wildcard[pattern]) paths.add(p);
        continue;
      }
      expect(pattern, `a route pattern with a wildcard: ${pattern}`).not.toContain("*");
      let expanded = [pattern];
      for (const [, name] of pattern.matchAll(/:([A-Za-z]+)/g)) {
        const candidates = values[name!];
        expect(candidates, `no concrete value for :${name} in ${pattern}`).toBeDefined();
        expanded = expanded.flatMap((p) => candidates!.map((v) => p.replace(`:${name}`, v)));
      }
      for (const p of expanded) paths.add(p);
    }
    concretePaths = [...paths];
  });

  it("there is no PUT, PATCH or DELETE route, and every ALL route is middleware", () => {
    expect(
      h.app.routes.filter((r) => ["PUT", "PATCH", "DELETE"].includes(r.method.toUpperCase())),
    ).toEqual([]);
    const methods = new Set(h.app.routes.map((r) => r.method));
    expect([...methods].sort()).toEqual(["ALL", "GET", "POST"]);
    // The only writes are appends (entries, structured events) and token administration.
    const posts = [
      ...new Set(h.app.routes.filter((r) => r.method === "POST").map((r) => r.path)),
    ].sort();
    expect(posts).toEqual([
      "/v1/entries",
      "/v1/entries/batch",
      "/v1/events",
      "/v1/events/batch",
      "/v1/tokens",
      "/v1/tokens/:id/revoke",
    ]);
  });

  it("every method not registered for a path is 404 or 405, and nothing changes", async () => {
    const before = await snapshot(h);
    // The admin token's first use (its last-used write is issued at once) before counting.
    await expectJson(await get(h.app, "/v1/tokens", { token: h.tokens.all }), 200);
    const writesBefore = h.db.counters.writes;
    expect(concretePaths.length).toBeGreaterThan(15);
    const seen = { registered: 0, refused405: 0, refused404: 0 };
    const failures: string[] = [];

    for (const path of [...concretePaths, ...UNKNOWN_PATHS]) {
      const allowed = registered(h.app.routes, path);
      for (const method of [...METHODS, ...FORBIDDEN_IN_FETCH]) {
        for (const token of [h.tokens.all, undefined]) {
          const headers: Record<string, string> = { "Content-Type": "application/json" };
          if (token !== undefined) headers.Authorization = `Bearer ${token}`;
          const url = `http://localhost${path}`;
          // An attempt to overwrite: a well-formed entry in the body wherever a body may go.
          const body = JSON.stringify({ entries: [{ payload: b64(enc("overwrite")) }] });
          let res: Response;
          if (FORBIDDEN_IN_FETCH.includes(method)) {
            res = await h.app.request(new ForcedMethod(url, method, headers));
          } else if (allowed.includes(method)) {
            // Registered: sent without a body, so that no append can happen either.
            res = await h.app.request(url, { method, headers });
          } else {
            res = await h.app.request(url, {
              method,
              headers,
              ...(method === "GET" || method === "HEAD" ? {} : { body }),
            });
          }
          const what = `${method} ${path} (${token === undefined ? "no token" : "admin"})`;
          if (allowed.includes(method)) {
            seen.registered++;
            const problem =
              res.status >= 400 ? await readProblem(res, method).catch(() => null) : null;
            if (res.status >= 500 || res.status === 405 || problem?.code === "ROUTE_NOT_FOUND") {
              failures.push(`${what}: registered, yet ${res.status} ${problem?.code}`);
            }
            continue;
          }
          const expected = allowed.length === 0 ? 404 : 405;
          if (res.status !== expected) {
            failures.push(`${what}: ${res.status}, expected ${expected}`);
            continue;
          }
          const problem = await readProblem(res, method).catch((e: Error) => {
            failures.push(`${what}: ${e.message}`);
            return null;
          });
          if (method !== "HEAD" && problem !== null) {
            const code = expected === 404 ? "ROUTE_NOT_FOUND" : "METHOD_NOT_ALLOWED";
            if (problem.code !== code) failures.push(`${what}: code ${problem.code}, not ${code}`);
          }
          if (expected === 405) {
            seen.refused405++;
            const allow = (res.headers.get("Allow") ?? "")
              .split(",")
              .map((m) => m.trim())
              .filter((m) => m !== "")
              .sort();
            if (allow.join(",") !== allowed.join(",")) {
              failures.push(`${what}: Allow "${res.headers.get("Allow")}", expected ${allowed}`);
            }
          } else {
            seen.refused404++;
          }
        }
      }
    }

    expect(failures).toEqual([]);
    expect(seen.refused405).toBeGreaterThan(500);
    expect(seen.refused404).toBeGreaterThan(100);
    expect(seen.registered).toBeGreaterThan(50);
    expect(h.db.counters.writes).toBe(writesBefore);
    const after = await snapshot(h);
    expect(after.checkpoint).toBe(before.checkpoint);
    expect(after.entries).toEqual(before.entries);
    expect(after.tiles).toEqual(before.tiles);
    expect(after.checkpoints).toEqual(before.checkpoints);
    expect(after.storage).toEqual(before.storage);
    expect(Object.keys(after.tiles).length).toBeGreaterThanOrEqual(5);
  });

  it("method overrides are not honoured", async () => {
    const before = await snapshot(h);
    for (const override of ["DELETE", "PUT", "PATCH"]) {
      for (const path of ["/v1/entries/0", `/v1/entries/0?_method=${override}`]) {
        const res = await post(h.app, path, {
          token: h.tokens.all,
          headers: {
            "X-HTTP-Method-Override": override,
            "X-HTTP-Method": override,
            "X-Method-Override": override,
          },
          body: "replacement",
        });
        await expectProblem(res, 405, "METHOD_NOT_ALLOWED");
        expect(res.headers.get("Allow")).toMatch(/GET/);
      }
    }
    expect(await snapshot(h)).toEqual(before);
  });

  it("a submission naming an existing index or id appends; it never overwrites", async () => {
    const before = await snapshot(h);
    const target = before.entries[0]!;
    const { results } = await expectJson<{ results: { status: number; index: number }[] }>(
      await postJson(
        h.app,
        "/v1/entries/batch",
        { entries: [{ payload: b64(enc("rewrite?")), index: 0, id: target.id }] },
        { token: h.tokens.append },
      ),
      200,
    );
    expect(results[0]).toMatchObject({ status: 201, index: before.entries.length });
    const after = await allEntries(h.app, h.tokens.read);
    expect(after.slice(0, before.entries.length)).toEqual(before.entries);
    expect(after).toHaveLength(before.entries.length + 1);
    // And an Idempotency-Key cannot rebind an entry to another payload.
    const key = { "Idempotency-Key": "bound" };
    await expectJson(
      await post(h.app, "/v1/entries", { token: h.tokens.append, headers: key, body: "one" }),
      201,
    );
    const bound = await allEntries(h.app, h.tokens.read);
    await expectProblem(
      await post(h.app, "/v1/entries", { token: h.tokens.append, headers: key, body: "two" }),
      409,
      "CONFLICT",
    );
    expect(await allEntries(h.app, h.tokens.read)).toEqual(bound);
  });
});
