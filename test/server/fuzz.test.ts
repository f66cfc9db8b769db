/**
 * A bounded fuzz of the HTTP API in process: a few thousand malformed (and some accidentally
 * valid) requests from a seeded fast-check sample — random bytes and JSON shapes as bodies, wrong
 * content types, huge, negative and non-canonical numbers, path tricks (`..`, `%2e%2e`, `//`, NUL,
 * unicode, very long paths), bad base64 and tile paths, and broken Authorization headers.
 *
 * Invariants: no 5xx ever (nothing here applies back-pressure); every error is well-formed
 * problem+json whose `code` maps to its status; nothing is logged as INTERNAL; and the tree
 * changes only by the submissions the server acknowledged as new (201): its size grows by exactly
 * their number, the old entries are untouched and the new checkpoint is consistent with the old.
 *
 * Reproduce a run with VELLUM_FUZZ_SEED=<seed> (the seed is in the failure message).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { base64Decode } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { verifyConsistency } from "../../src/core/verify.js";
import {
  allEntries,
  b64,
  b64url,
  bodyBytes,
  type EntryJson,
  enc,
  expectJson,
  get,
  type Harness,
  hex,
  openHarness,
  post,
  postJson,
  readProblem,
} from "./helpers.js";

const SEED = Number(process.env.VELLUM_FUZZ_SEED ?? 0x7e11a);
const RUNS = 5000;
/** Wall-clock budget for the requests; the run stops early (and says so) if it is used up. */
const BUDGET_MS = 12_000;
const MIN_RUNS = 1000;
const MAX_BATCH = 16;

interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string | Uint8Array;
}

const STATUSES = new Set([200, 201, 400, 401, 403, 404, 405, 409, 413, 415]);

// ---- arbitraries ----------------------------------------------------------------------------

const printable = (maxLength: number) => fc.string({ maxLength });

const numberish = fc.oneof(
  fc.constantFrom(
    "0",
    "1",
    "7",
    "299",
    "300",
    "301",
    "01",
    "00",
    "-1",
    "-0",
    "+1",
    "%2B1",
    "%201",
    "1%20",
    "1e3",
    "1E3",
    "1.0",
    "1.",
    ".5",
    "0x10",
    "0b1",
    "0o7",
    "1_000",
    "Infinity",
    "-Infinity",
    "NaN",
    "",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "%D9%A1%D9%A2",
    "%EF%BC%91",
    "1%00",
    "%00",
  ),
  fc.nat({ max: 400 }).map(String),
  fc.bigInt({ min: -(1n << 80n), max: 1n << 80n }).map(String),
  fc.constantFrom(40, 400, 5000).map((n) => "9".repeat(n)),
  printable(8).map(encodeURIComponent),
);

/** Canonical tile index text (`x001/234`) for a number. */
const indexText = (n: number) => {
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, "0"));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join("/");
};

const tilePath = fc.oneof(
  fc
    .tuple(
      fc.constantFrom("0", "1", "2", "63", "64", "entries", "00", "-1", "x", "entry", "01"),
      fc.oneof(
        fc.nat({ max: 3000 }).map(indexText),
        fc.constantFrom(
          "000",
          "001",
          "0",
          "0000",
          "x000/001",
          "x001",
          "x009/x007/x199/x254/x740/991",
          "x009/x007/x199/x254/x740/992",
          `${"x999/".repeat(12)}999`,
          "%30%30%30",
          "..",
          "%2e%2e",
          "",
        ),
      ),
      fc.option(
        fc.oneof(fc.integer({ min: -1, max: 300 }).map(String), fc.constantFrom("01", "", "a")),
      ),
    )
    .map(
      ([level, index, width]) => `/tile/${level}/${index}${width === null ? "" : `.p/${width}`}`,
    ),
  printable(70).map((s) => `/tile/${s}`),
  fc.constantFrom(
    "/tile",
    "/tile/",
    "/tile//0/000",
    "/tile/0//000",
    "/tile/0/000%2F",
    "/tile/0/000%00",
  ),
);

const uuidish = (known: string[]) =>
  fc.oneof(
    fc.constantFrom(...known),
    fc.uuid(),
    fc.uuid().map((u) => u.toUpperCase()),
    fc.uuid().map((u) => u.replaceAll("-", "")),
    printable(40).map(encodeURIComponent),
  );

const hashish = (known: string[]) =>
  fc.oneof(
    fc.constantFrom(...known),
    fc.uint8Array({ maxLength: 40 }).map(b64url),
    fc.uint8Array({ maxLength: 40 }).map(b64), // raw: `/` and `+` unescaped
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => encodeURIComponent(b64(b))),
    fc.uint8Array({ minLength: 31, maxLength: 33 }).map(hex),
    fc.stringMatching(/^[0-9a-fA-F]{62,66}$/),
    printable(70).map(encodeURIComponent),
    fc.constantFrom("", "%", "%zz", "%ff%fe", "====", "A".repeat(43), `${"A".repeat(43)}=`),
  );

const pathTrick = fc.oneof(
  fc.constantFrom(
    "/v1/entries/../tokens",
    "/v1/entries/%2e%2e/tokens",
    "/v1/entries/%2E%2E/%2E%2E/checkpoint",
    "/v1/entries/.%2e/.%2e/v1/tokens",
    "//checkpoint",
    "/v1//entries",
    "/v1/entries//0",
    "///",
    "/v1/entries/0/",
    "/v1/entries/%00",
    "/v1/entries/0%00",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/v1/entries/%zz",
    "/v1/entries/%",
    "/v1/entries/%c0%ae%c0%ae",
    "/v1/tokens/%2e%2e%2fentries/revoke",
    "/v1/tokens/..%2f..%2fentries/revoke",
    "/checkpoint%2F",
    "/checkpoint;x",
    "/checkpoint%20",
    "/checkpoint/.",
    "/v1/entries/0#fragment",
    "/v1/entries?start=0&start=-1",
    "/v1/entries?start[]=1",
    "/v1/entries/%F0%9F%98%80",
    "/v1/entries/by-id/%F0%9F%98%80",
    "/v1/entries/by-leaf-hash/%ff%fe",
    "/V1/ENTRIES",
    "/v1/Entries/0",
    "/CHECKPOINT",
    "/v1/entries\\0",
  ),
  fc.constantFrom(1000, 10_000, 100_000).map((n) => `/${"a".repeat(n)}`),
  fc.constantFrom(1000, 10_000).map((n) => `/v1/entries/${"9".repeat(n)}`),
  fc.constantFrom(1000, 10_000).map((n) => `/tile/0/${"x000/".repeat(n)}000`),
  fc.string({ unit: "grapheme", maxLength: 20 }).map((s) => `/v1/entries/${s}`),
  fc.string({ unit: "grapheme", maxLength: 20 }).map((s) => `/${encodeURIComponent(s)}`),
  fc
    .array(
      fc.constantFrom(
        "..",
        ".",
        "%2e%2e",
        "%2E",
        "",
        "v1",
        "entries",
        "tokens",
        "tile",
        "0",
        "000",
        "%2f",
        "%5c",
        "%00",
        "checkpoint",
      ),
      { maxLength: 8 },
    )
    .map((segments) => `/${segments.join("/")}`),
);

function queryOf(names: string[], values: fc.Arbitrary<string>) {
  return fc
    .array(fc.tuple(fc.constantFrom(...names), values), { maxLength: 4 })
    .map((pairs) => (pairs.length === 0 ? "" : `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}`));
}

/** The requests, given what the log holds (known ids and hashes) and the tokens. */
interface Known {
  /** Real entry ids and leaf hashes (in the URL forms), so lookups sometimes hit. */
  readonly ids: string[];
  readonly hashes: string[];
  /** A revoked token and its id. */
  readonly victim: string;
  readonly victimId: string;
}

function requests(h: Harness, known: Known) {
  const t = h.tokens;
  const revoked = known.victim; // revoked in setUp; still a well-formed token
  const authorization = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 10,
      arbitrary: fc.constantFrom(t.all, t.append, t.read, t.admin).map((x) => `Bearer ${x}`),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        `bearer ${t.all}`,
        `BEARER ${t.all}`,
        `Bearer  ${t.all}`,
        `Bearer ${t.all}x`,
        `Bearer ${t.all.slice(0, -1)}`,
        `Bearer ${revoked}`,
        `Bearer ${t.all}, Bearer ${t.read}`,
        "Bearer",
        "Bearer vellum_",
        `Bearer vellum_${"A".repeat(43)}`,
        `Bearer vellum_${"A".repeat(200)}`,
        `Bearer ${"x".repeat(10_000)}`,
        "Basic dXNlcjpwYXNz",
        "Digest username=x",
        "Token abc",
        "null",
        "Bearer null",
        "Bearer undefined",
      ),
    },
    { weight: 1, arbitrary: printable(60) },
    { weight: 1, arbitrary: printable(60).map((s) => `Bearer ${s}`) },
  );
  const contentType = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/jsonx",
        "application/problem+json",
        "text/plain",
        "text/json",
        "application/octet-stream",
        "multipart/form-data; boundary=----x",
        "application/x-www-form-urlencoded",
        "",
      ),
    },
    { weight: 1, arbitrary: printable(40) },
  );
  const extraHeaders = fc.record(
    {
      "Accept-Encoding": fc.oneof(
        fc.constantFrom("gzip", "deflate", "br", "identity", "*", "gzip;q=0", "gzip, deflate, br"),
        printable(30),
      ),
      "Idempotency-Key": fc.oneof(
        fc.constantFrom("", "k", "key-1", "x".repeat(200), "x".repeat(201)),
        printable(250),
      ),
      "Content-Length": fc.oneof(fc.nat({ max: 100_000 }).map(String), printable(10)),
      Accept: fc.constantFrom("application/json", "*/*", "text/html", "application/problem+json"),
      "X-HTTP-Method-Override": fc.constantFrom("DELETE", "PUT", "PATCH"),
      Range: fc.constantFrom("bytes=0-10", "bytes=-1", "bytes=abc"),
      "If-None-Match": printable(20),
    },
    { requiredKeys: [] },
  );
  const headers = fc.tuple(authorization, contentType, extraHeaders).map(([auth, type, extra]) => {
    const out: Record<string, string> = { ...extra };
    if (auth !== undefined) out.Authorization = auth;
    if (type !== undefined) out["Content-Type"] = type;
    return out;
  });

  const payloadText = fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 48 }).map(b64) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 48 }).map(b64url) },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ minLength: 1, maxLength: 48 })
        .map((b) => b64(b).replace(/=+$/, "")),
    },
    { weight: 1, arbitrary: printable(20) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "",
        "====",
        "QR==",
        "QQ=",
        "Q===",
        " QUJD",
        "QUJD\n",
        "QUJD==",
        "éééé",
      ),
    },
  );
  const item = fc.oneof(
    { weight: 5, arbitrary: fc.record({ payload: payloadText }) },
    {
      weight: 2,
      arbitrary: fc.record(
        {
          payload: fc.oneof(payloadText, fc.anything({ maxDepth: 1 })),
          idempotencyKey: fc.oneof(
            fc.constantFrom("k", "key-1", "", "x".repeat(201)),
            printable(30),
            fc.anything({ maxDepth: 1 }),
          ),
        },
        { requiredKeys: [] },
      ),
    },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
  );
  const batchBody = fc.oneof(
    { weight: 5, arbitrary: fc.record({ entries: fc.array(item, { maxLength: MAX_BATCH + 4 }) }) },
    { weight: 1, arbitrary: fc.record({ entries: fc.anything({ maxDepth: 2 }) }) },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
  );
  const tooBig = new Uint8Array(65_505).fill(0x41);
  const body = fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.constant(tooBig) },
    {
      weight: 3,
      arbitrary: batchBody.map((v) => JSON.stringify(v) ?? "undefined"),
    },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 100 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom("{", "[", "null", '{"entries":', "\u0000", "{}", '{"name":"x"}'),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({
          name: fc.oneof(printable(30), fc.anything({ maxDepth: 0 })),
          scopes: fc.oneof(
            fc.array(fc.constantFrom("read", "append", "admin", "root", ""), { maxLength: 4 }),
            fc.anything({ maxDepth: 1 }),
          ),
        })
        .map((v) => JSON.stringify(v)),
    },
  );
  const method = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("GET", "POST") },
    {
      weight: 1,
      arbitrary: fc.constantFrom("HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"),
    },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,10}$/) },
  );

  const routePath = fc.oneof(
    fc.constantFrom(
      "/checkpoint",
      "/v1/log",
      "/healthz",
      "/readyz",
      "/metrics",
      "/openapi.json",
      "/docs",
      "/v1/entries",
      "/v1/entries/batch",
      "/v1/tokens",
    ),
    queryOf(["index", "size", "leafHash"], fc.oneof(numberish, hashish(known.hashes))).map(
      (q) => `/v1/proofs/inclusion${q}`,
    ),
    queryOf(["from", "to"], numberish).map((q) => `/v1/proofs/consistency${q}`),
    queryOf(["start", "limit"], numberish).map((q) => `/v1/entries${q}`),
    numberish.map((n) => `/v1/entries/${n}`),
    numberish.map((n) => `/v1/checkpoints/${n}`),
    uuidish(known.ids).map((id) => `/v1/entries/by-id/${id}`),
    hashish(known.hashes).map((x) => `/v1/entries/by-leaf-hash/${x}`),
    fc
      .oneof(fc.constant(known.victimId), fc.stringMatching(/^[0-9a-f]{16}$/), printable(20))
      .map((id) => `/v1/tokens/${encodeURIComponent(id)}/revoke`),
    tilePath,
    pathTrick,
  );

  const submitOne = fc
    .tuple(headers, body)
    .map(([hs, b]): FuzzRequest => ({ method: "POST", path: "/v1/entries", headers: hs, body: b }));
  const batchPath = fc.constantFrom(
    "/v1/entries/batch",
    "/v1/entries/batch?proof=multi",
    "/v1/entries/batch?proof=full",
    "/v1/entries/batch?proof=MULTI",
    "/v1/entries/batch?proof=",
  );
  const submitBatch = fc.tuple(headers, batchBody, fc.boolean(), batchPath).map(
    ([hs, v, forceJson, path]): FuzzRequest => ({
      method: "POST",
      path,
      headers: forceJson ? { ...hs, "Content-Type": "application/json" } : hs,
      body: JSON.stringify(v) ?? "",
    }),
  );
  const anything = fc.tuple(method, routePath, headers, body).map(
    ([m, p, hs, b]): FuzzRequest => ({
      method: m,
      path: p,
      headers: hs,
      ...(m === "GET" || m === "HEAD" ? {} : { body: b }),
    }),
  );
  const read = fc
    .tuple(fc.constantFrom("GET", "HEAD"), routePath, headers)
    .map(([m, p, hs]): FuzzRequest => ({ method: m, path: p, headers: hs }));

  return fc.oneof(
    { weight: 3, arbitrary: submitOne },
    { weight: 3, arbitrary: submitBatch },
    { weight: 5, arbitrary: read },
    { weight: 5, arbitrary: anything },
  );
}

/** The scope a request needs to succeed (spec/api.md), or undefined for a public one. */
function scopeNeeded(method: string, rawPath: string): string | undefined {
  let path = rawPath;
  try {
    path = decodeURI(rawPath);
  } catch {
    // left as is: hono does the same with a path it cannot decode
  }
  if (path === "/v1/tokens" || path.startsWith("/v1/tokens/")) return "admin";
  if (method === "POST" && (path === "/v1/entries" || path === "/v1/entries/batch")) {
    return "append";
  }
  const reading = method === "GET" || method === "HEAD";
  if (reading && (path === "/v1/entries" || path.startsWith("/v1/entries/"))) return "read";
  if (reading && path.startsWith("/tile/entries/")) return "read";
  return undefined;
}

// ---- the run ------------------------------------------------------------------------------

describe(`fuzz (seed ${SEED})`, () => {
  let h: Harness;
  let known: Known;
  let errors: ReturnType<typeof vi.spyOn>;
  afterAll(() => errors.mockRestore());

  beforeAll(async () => {
    // The app logs INTERNAL errors with console.error: none may happen.
    errors = vi.spyOn(console, "error").mockImplementation(() => {});
    h = await openHarness({ maxBatchEntries: MAX_BATCH });
    const entries = Array.from({ length: 300 }, (_, i) => ({ payload: b64(enc(`seed ${i}`)) }));
    for (let i = 0; i < entries.length; i += MAX_BATCH) {
      await expectJson(
        await postJson(
          h.app,
          "/v1/entries/batch",
          { entries: entries.slice(i, i + MAX_BATCH) },
          { token: h.tokens.append },
        ),
        200,
      );
    }
    const victim = await h.tokenStore.create("victim", ["read"]);
    await h.tokenStore.revoke(victim.info.id);
    const some = await allEntries(h.app, h.tokens.read);
    known = {
      ids: some.slice(0, 20).map((e) => e.id),
      hashes: some.slice(0, 20).flatMap((e) => {
        const raw = base64Decode(e.leafHash);
        return [b64url(raw), hex(raw), encodeURIComponent(e.leafHash)];
      }),
      victim: victim.token,
      victimId: victim.info.id,
    };
  });

  it("answers thousands of malformed requests without a 5xx; only acknowledged entries land", async () => {
    const samples = fc.sample(requests(h, known), { numRuns: RUNS, seed: SEED });
    const scopes = new Map<string, string[]>([
      [h.tokens.all, ["admin", "append", "read"]],
      [h.tokens.admin, ["admin"]],
      [h.tokens.append, ["append"]],
      [h.tokens.read, ["read"]],
    ]);
    /** The scopes an Authorization header grants (scheme read case-insensitively). */
    const scopesOf = (header: string | undefined) => {
      const m = /^bearer +(\S+) *$/i.exec(header ?? "");
      return m === null ? undefined : scopes.get(m[1]!);
    };
    const logKey = verifierFromKey(h.log.signer.verifierKey);
    const beforeNote = await (await get(h.app, "/checkpoint")).text();
    const before = openCheckpoint(beforeNote, logKey).checkpoint;
    const beforeEntries: EntryJson[] = await allEntries(h.app, h.tokens.read);
    expect(before.size).toBe(300);

    const failures: string[] = [];
    const createdIndices: number[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    let unsendable = 0;
    const started = performance.now();

    for (const r of samples) {
      if (performance.now() - started > BUDGET_MS) break;
      const show = () =>
        `${r.method} ${r.path.slice(0, 200)} ${JSON.stringify(r.headers).slice(0, 300)} body=${
          r.body === undefined
            ? "none"
            : typeof r.body === "string"
              ? JSON.stringify(r.body.slice(0, 200))
              : `${r.body.length} bytes`
        }`;
      let request: Request;
      try {
        request = new Request(`http://localhost${r.path}`, {
          method: r.method,
          headers: r.headers,
          ...(r.body === undefined ? {} : { body: r.body as Uint8Array<ArrayBuffer> | string }),
        });
      } catch {
        unsendable++; // the client refuses to build it (e.g. a forbidden method): never sent
        continue;
      }
      sent++;
      let res: Response;
      try {
        res = await h.app.request(request);
      } catch (e) {
        failures.push(`threw ${(e as Error).message}: ${show()}`);
        continue;
      }
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (!STATUSES.has(res.status)) {
        failures.push(`status ${res.status} (${await res.text()}): ${show()}`);
        continue;
      }
      if (res.status >= 400) {
        try {
          await readProblem(res, r.method);
        } catch (e) {
          failures.push(`${(e as Error).message}: ${show()}`);
          continue;
        }
        if (res.status === 401 && !res.headers.get("WWW-Authenticate")?.startsWith("Bearer ")) {
          failures.push(`401 without WWW-Authenticate: ${show()}`);
        }
        if (res.status === 405 && (res.headers.get("Allow") ?? "") === "") {
          failures.push(`405 without Allow: ${show()}`);
        }
        continue;
      }
      // A success on a protected route means a valid token with its scope was presented.
      const needs = scopeNeeded(r.method, new URL(request.url).pathname);
      if (needs !== undefined && !(scopesOf(r.headers.Authorization) ?? []).includes(needs)) {
        failures.push(`${res.status} without the "${needs}" scope: ${show()}`);
        continue;
      }
      // Successes: count what was acknowledged as new.
      const type = res.headers.get("Content-Type") ?? "";
      if (r.method === "HEAD" || !type.startsWith("application/json")) continue;
      const text = new TextDecoder().decode(await bodyBytes(res));
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        failures.push(`a ${res.status} JSON answer that is not JSON: ${show()}`);
        continue;
      }
      if (r.method === "POST" && new URL(request.url).pathname === "/v1/entries") {
        if (res.status === 201) createdIndices.push((json as { index: number }).index);
      } else if (r.method === "POST" && new URL(request.url).pathname === "/v1/entries/batch") {
        for (const item of (json as { results: { status: number; index?: number }[] }).results) {
          if (item.status === 201) createdIndices.push(item.index!);
          else if (item.status >= 500) failures.push(`batch item ${item.status}: ${show()}`);
        }
      }
    }
    const elapsed = performance.now() - started;
    const summary = `seed ${SEED}: ${sent} requests in ${Math.round(elapsed)} ms, statuses ${JSON.stringify(
      Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
    )}, ${createdIndices.length} new entries`;

    expect(failures.slice(0, 20), summary).toEqual([]);
    expect(errors, "nothing was logged as an internal error").not.toHaveBeenCalled();
    expect(sent, summary).toBeGreaterThanOrEqual(MIN_RUNS);
    expect(unsendable, summary).toBeLessThan(RUNS / 100);
    // The mix reached the deep paths, not just the front door.
    for (const status of [200, 201, 400, 401, 403, 404, 405, 413, 415]) {
      expect(statuses.get(status) ?? 0, `${summary}: no ${status} at all`).toBeGreaterThan(0);
    }

    // The tree changed by exactly the acknowledged new entries, appended after the old ones.
    const created = createdIndices.length;
    const afterNote = await (await get(h.app, "/checkpoint")).text();
    const after = openCheckpoint(afterNote, logKey).checkpoint;
    expect(after.size, summary).toBe(before.size + created);
    expect([...createdIndices].sort((a, b) => a - b)).toEqual(
      Array.from({ length: created }, (_, i) => before.size + i),
    );
    const afterEntries = await allEntries(h.app, h.tokens.read);
    expect(afterEntries.slice(0, before.size)).toEqual(beforeEntries);
    if (created === 0) {
      expect(afterNote).toBe(beforeNote);
    } else {
      const { proof } = await expectJson<{ proof: string[] }>(
        await get(h.app, `/v1/proofs/consistency?from=${before.size}&to=${after.size}`),
        200,
      );
      verifyConsistency(
        before.size,
        after.size,
        proof.map((p) => base64Decode(p)),
        before.rootHash,
        after.rootHash,
      );
    }

    // Still healthy and still taking entries.
    expect(h.log.status).toBe("open");
    expect((await get(h.app, "/readyz")).status).toBe(200);
    await expectJson(
      await post(h.app, "/v1/entries", { token: h.tokens.append, body: `after fuzz ${SEED}` }),
      201,
    );
    expect(h.log.size).toBe(after.size + 1);
  });
});
