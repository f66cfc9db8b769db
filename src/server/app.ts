/**
 * @module
 * The HTTP API (spec/api.md, spec/openapi.json): a thin hono app over one Log. Handlers parse and
 * check input, call the log, and shape JSON; every error goes through problem.ts. There is no
 * route that updates or deletes an entry.
 */
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { TrieRouter } from "hono/router/trie-router";
import { base64Decode, concatBytes, hexDecode, parseDecimal } from "../core/bytes.js";
import { encodeLeafFields, MAX_PAYLOAD_SIZE, parseUuid } from "../core/entry.js";
import { VellumError } from "../core/errors.js";
import { HASH_SIZE } from "../core/rfc6962.js";
import { parseTilePath, TILE_WIDTH } from "../core/tiles.js";
import { TLOG_PROOF_HEADER } from "../core/tlog-proof.js";
import type { Log, LogEntry } from "../log/log.js";
import type { Receipt } from "../log/receipt.js";
import { base64DecodeStrict, base64 as base64Encode, base64JsonArray } from "../platform/base64.js";
import { Metrics } from "./metrics.js";
import { HttpProblem, problemOf } from "./problem.js";
import { SCOPES, type Scope, type TokenInfo, type TokenStore } from "./tokens.js";

export interface AppOptions {
  readonly log: Log;
  readonly tokens: TokenStore;
  /** Entries and entry bundles readable without a token. */
  readonly publicReads?: boolean;
  readonly metrics?: Metrics;
  /** Most entries in one batch request. */
  readonly maxBatchEntries?: number;
}

export const LIMITS = {
  maxPayloadSize: MAX_PAYLOAD_SIZE,
  maxBatchEntries: 10_000,
  maxBatchBodyBytes: 16 * 1024 * 1024,
  maxPageSize: 1000,
  maxIdempotencyKeyLength: 200,
};

export const OPENAPI_TEXT = readFileSync(
  new URL("../../spec/openapi.json", import.meta.url),
  "utf8",
);

type Env = Record<string, never>;

/** A batch entry that was refused: its status and problem, in the batch's answer. */
interface HttpError {
  readonly status: number;
  readonly error: { readonly code: string; readonly detail: string };
}

const STATUS_CLASS = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

/** For each route path, the methods it answers (GET implies HEAD), for 405's Allow header. */
function routeMethods(app: Hono<Env>): TrieRouter<string[]> {
  const byPath = new Map<string, Set<string>>();
  for (const route of app.routes) {
    if (route.method === "ALL" || route.method === "HEAD") continue;
    const methods = byPath.get(route.path) ?? new Set<string>();
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
    byPath.set(route.path, methods);
  }
  const router = new TrieRouter<string[]>();
  for (const [path, methods] of byPath) router.add("ALL", path, [...methods]);
  return router;
}
/** Tiles and bundles above this size are gzipped when the client accepts it. */
const GZIP_MIN_BYTES = 1024;

const JSON_HEADERS = { "Content-Type": "application/json" } as const;
const json = (c: Context, body: unknown, status: 200 | 201 = 200) =>
  c.body(JSON.stringify(body), status, JSON_HEADERS);

/**
 * Reads the request body, refusing more than `limit` bytes with 413. A declared Content-Length
 * is checked before reading; a chunked body is counted as it streams. (hono's bodyLimit
 * middleware wraps every body in a web stream, which made each POST ~4x more expensive.)
 */
async function readBody(c: Context, limit: number): Promise<Uint8Array> {
  const tooLarge = () =>
    new HttpProblem("PAYLOAD_TOO_LARGE", `the body exceeds the limit of ${limit} bytes`);
  const declared = c.req.header("Content-Length");
  if (declared !== undefined) {
    const length = Number(declared);
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new HttpProblem("BAD_REQUEST", "Content-Length is not a valid length");
    }
    if (length > limit) throw tooLarge();
    return new Uint8Array(await c.req.arrayBuffer());
  }
  const body = c.req.raw.body;
  if (body === null) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    parts.push(value);
  }
  return concatBytes(...parts);
}

/** The body as JSON (at most `limit` bytes); anything unparsable is 400 with `hint`. */
async function readJson(c: Context, limit: number, hint: string): Promise<unknown> {
  const bytes = await readBody(c, limit);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new HttpProblem("BAD_REQUEST", hint);
  }
}

function decimal(value: string | undefined, what: string): number {
  if (value === undefined)
    throw new HttpProblem("BAD_REQUEST", `missing query parameter "${what}"`);
  return parseDecimal(value, what);
}

function optionalDecimal(value: string | undefined, what: string): number | undefined {
  return value === undefined ? undefined : parseDecimal(value, what);
}

/** A leaf hash in a path or query: standard or URL-safe base64 (padding optional), or hex. */
function parseHash(text: string, what: string): Uint8Array {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return hexDecode(text, what);
  let b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  if (b64.length === 43) b64 += "=";
  const bytes = base64Decode(b64, what);
  if (bytes.length !== HASH_SIZE) {
    throw new VellumError("MALFORMED", `${what} must be 32 bytes, got ${bytes.length}`);
  }
  return bytes;
}

function entryJson(e: LogEntry) {
  return {
    index: e.index,
    id: e.id,
    timestamp: e.timestamp,
    leafHash: base64Encode(e.leafHash),
    payload: base64Encode(e.payload),
  };
}

/** JSON string literals of recent checkpoint notes: every receipt of a batch carries the same. */
let quotedNote = { note: "", json: '""' };
function quoteNote(note: string): string {
  if (quotedNote.note !== note) quotedNote = { note, json: JSON.stringify(note) };
  return quotedNote.json;
}

/**
 * A receipt as the members of a JSON object (no braces): index, id, timestamp, leafHash,
 * treeSize, checkpoint, receipt (the C2SP tlog-proof text), duplicate, witnessed. Written
 * directly rather than through JSON.stringify, which would build the tlog-proof text and then
 * scan it again to escape it: here its newlines are written escaped, and the checkpoint note,
 * the same for the whole batch, is escaped once (a test checks the text parses to the same
 * values as the receipt's own tlogProof()).
 */
async function receiptMembers(r: Receipt): Promise<string> {
  const quoted = quoteNote(r.checkpoint);
  const extra = encodeLeafFields({ id: r.id, timestamp: r.timestamp, leafHash: r.leafHash });
  let proof = "";
  for (const h of await r.proof()) proof += `${base64Encode(h)}\\n`;
  const receipt = `"${TLOG_PROOF_HEADER}\\nextra ${base64Encode(extra)}\\nindex ${r.index}\\n${proof}\\n${quoted.slice(1)}`;
  return (
    `"index":${r.index},"id":"${r.idText}","timestamp":${r.timestamp},` +
    `"leafHash":"${base64Encode(r.leafHash)}","treeSize":${r.treeSize},"checkpoint":${quoted},` +
    `"receipt":${receipt},"duplicate":${r.duplicate},"witnessed":${r.witnessed}`
  );
}

export function createApp(options: AppOptions): Hono<Env> {
  const { log, tokens } = options;
  const metrics = options.metrics ?? new Metrics();
  const maxBatchEntries = options.maxBatchEntries ?? LIMITS.maxBatchEntries;
  const app = new Hono<Env>();

  // The only middleware every request passes: kept to one await (each layer costs on the
  // hottest routes). Method checks and authentication happen where they matter instead.
  app.use(async (c, next) => {
    await next();
    metrics.requests.inc(STATUS_CLASS[Math.floor(c.res.status / 100)] ?? "other");
  });

  function problem(c: Context<Env>, error: unknown): Response {
    const { problem: body, headers } = problemOf(error);
    metrics.errors.inc(body.code);
    if (body.code === "INTERNAL") console.error(`vellum: ${c.req.method} ${c.req.path}:`, error);
    return new Response(JSON.stringify(body), {
      status: body.status,
      headers: {
        "Content-Type": "application/problem+json",
        // An error is about this moment: a tile that is missing now may exist in a second.
        "Cache-Control": "no-store",
        ...headers,
      },
    });
  }
  app.onError((err, c) => problem(c, err));
  // No route matched: 405 with Allow when the path exists under other methods, else 404. Done
  // here rather than in a middleware so that matched requests do not pay for it.
  let methodsByPath: TrieRouter<string[]> | undefined;
  app.notFound((c) => {
    methodsByPath ??= routeMethods(app);
    const allowed = new Set(methodsByPath.match("ALL", c.req.path)[0].flatMap(([m]) => m));
    if (allowed.size > 0 && !allowed.has(c.req.method)) {
      const methods = [...allowed].join(", ");
      return problem(
        c,
        new HttpProblem(
          "METHOD_NOT_ALLOWED",
          `${c.req.method} is not allowed here; use ${methods}`,
          { Allow: methods },
        ),
      );
    }
    return problem(
      c,
      new HttpProblem(
        "ROUTE_NOT_FOUND",
        `no route ${c.req.method} ${c.req.path}; see /openapi.json`,
      ),
    );
  });

  /**
   * Requires a bearer token with `scope` (unless `unless`). The Authorization header is read
   * only here: a public route answers whatever header a proxy may have added.
   */
  const requireScope =
    (scope: Scope, unless = false): MiddlewareHandler<Env> =>
    async (c, next) => {
      if (!unless) {
        const header = c.req.header("Authorization");
        const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
        const info = m === null ? undefined : tokens.verify(m[1]!);
        if (info === undefined) {
          throw new HttpProblem(
            "UNAUTHENTICATED",
            header !== undefined
              ? "the bearer token is not valid (unknown, revoked or malformed)"
              : `this request needs a bearer token with the "${scope}" scope`,
            {
              "WWW-Authenticate": 'Bearer realm="vellum"',
            },
          );
        }
        if (!info.scopes.includes(scope)) {
          throw new HttpProblem("FORBIDDEN", `this token lacks the "${scope}" scope`);
        }
      }
      await next();
    };
  const readAccess = requireScope("read", options.publicReads === true);

  // ---- submissions -------------------------------------------------------------------------

  function idempotencyKey(c: Context): string | undefined {
    const key = c.req.header("Idempotency-Key");
    if (key === undefined) return undefined;
    if (key.length === 0 || key.length > LIMITS.maxIdempotencyKeyLength) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `Idempotency-Key must be 1-${LIMITS.maxIdempotencyKeyLength} characters`,
      );
    }
    return key;
  }

  app.post("/v1/entries", requireScope("append"), async (c) => {
    const key = idempotencyKey(c);
    const payload = await readBody(c, MAX_PAYLOAD_SIZE);
    if (payload.length === 0)
      throw new HttpProblem("BAD_REQUEST", "the payload (request body) is empty");
    let receipt: Receipt;
    try {
      receipt = await log.submit(payload, key === undefined ? {} : { idempotencyKey: key });
    } catch (e) {
      metrics.submissions.inc("error");
      throw e;
    }
    metrics.submissions.inc(receipt.duplicate ? "duplicate" : "created");
    return c.body(
      `{${await receiptMembers(receipt)}}`,
      receipt.duplicate ? 200 : 201,
      JSON_HEADERS,
    );
  });

  app.post("/v1/entries/batch", requireScope("append"), async (c) => {
    const proofMode = c.req.query("proof") ?? "full";
    if (proofMode !== "full" && proofMode !== "multi") {
      throw new HttpProblem("BAD_REQUEST", 'query parameter "proof" must be "full" or "multi"');
    }
    if (!(c.req.header("Content-Type") ?? "").toLowerCase().startsWith("application/json")) {
      throw new HttpProblem("UNSUPPORTED_MEDIA_TYPE", "send the batch as application/json");
    }
    const body = await readJson(c, LIMITS.maxBatchBodyBytes, "the body is not valid JSON");
    const items = (body as { entries?: unknown })?.entries;
    if (!Array.isArray(items) || items.length === 0 || items.length > maxBatchEntries) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `"entries" must be an array of 1-${maxBatchEntries} objects`,
      );
    }
    // Validate everything first: a malformed batch changes nothing.
    const parsed = items.map((item, i) => {
      const it = item as { payload?: unknown; idempotencyKey?: unknown };
      if (typeof it !== "object" || it === null || typeof it.payload !== "string") {
        throw new HttpProblem("BAD_REQUEST", `entries[${i}].payload must be a base64 string`);
      }
      const payload = base64DecodeStrict(it.payload, `entries[${i}].payload`);
      if (payload.length === 0)
        throw new HttpProblem("BAD_REQUEST", `entries[${i}].payload is empty`);
      if (payload.length > MAX_PAYLOAD_SIZE) {
        throw new VellumError(
          "TOO_LARGE",
          `entries[${i}].payload is ${payload.length} bytes; the limit is ${MAX_PAYLOAD_SIZE}`,
        );
      }
      const key = it.idempotencyKey;
      if (
        key !== undefined &&
        (typeof key !== "string" || key.length === 0 || key.length > LIMITS.maxIdempotencyKeyLength)
      ) {
        throw new HttpProblem(
          "BAD_REQUEST",
          `entries[${i}].idempotencyKey must be a string of 1-${LIMITS.maxIdempotencyKeyLength} characters`,
        );
      }
      return key === undefined ? { payload } : { payload, idempotencyKey: key as string };
    });
    const outcomes = (await log.submitEach(parsed)).map((r): Receipt | HttpError => {
      if (!("error" in r)) {
        metrics.submissions.inc(r.duplicate ? "duplicate" : "created");
        return r;
      }
      metrics.submissions.inc("error");
      const { problem: p } = problemOf(r.error);
      metrics.errors.inc(p.code);
      return { status: p.status, error: { code: p.code, detail: p.detail } };
    });
    if (proofMode === "multi") return json(c, await multiproofAnswer(outcomes));
    const results = await Promise.all(
      outcomes.map(async (r) =>
        "error" in r
          ? JSON.stringify(r)
          : `{"status":${r.duplicate ? 200 : 201},${await receiptMembers(r)}}`,
      ),
    );
    return c.body(`{"results":[${results.join(",")}]}`, 200, JSON_HEADERS);
  });

  /**
   * The compact answer to a batch (`?proof=multi`): one checkpoint, each entry's fields, and one
   * multiproof for all of them, from which the client rebuilds each entry's receipt (the same
   * bytes the full answer carries). Every receipt of a batch shares the checkpoint, and most of
   * their proof hashes: this sends each hash once.
   */
  async function multiproofAnswer(outcomes: (Receipt | HttpError)[]) {
    const stored = outcomes.filter((r): r is Receipt => !("error" in r));
    const indices = [...new Set(stored.map((r) => r.index))].sort((a, b) => a - b);
    // The newest checkpoint among the receipts covers them all; a witnessed one is preferred
    // when one covers them all too.
    const byNewest = [...stored].sort((a, b) => b.treeSize - a.treeSize);
    const last = indices.at(-1) ?? -1;
    const basis = byNewest.find((r) => r.witnessed && r.treeSize > last) ?? byNewest[0];
    const proof = basis === undefined ? [] : await log.multiproof(indices, basis.treeSize);
    return {
      treeSize: basis?.treeSize ?? null,
      checkpoint: basis?.checkpoint ?? null,
      witnessed: basis?.witnessed ?? null,
      multiproof: proof.map(base64Encode),
      results: outcomes.map((r) =>
        "error" in r
          ? r
          : {
              status: r.duplicate ? 200 : 201,
              index: r.index,
              id: r.idText,
              timestamp: r.timestamp,
              leafHash: base64Encode(r.leafHash),
              duplicate: r.duplicate,
            },
      ),
    };
  }

  // ---- C2SP tlog-tiles ---------------------------------------------------------------------

  app.get("/checkpoint", (c) => {
    const published = log.published;
    if (published === undefined) {
      throw new VellumError("UNAVAILABLE", "no checkpoint has met the witness quorum yet");
    }
    return c.body(published.note, 200, {
      "Content-Type": "text/plain; charset=utf-8",
      "Cache-Control": "public, max-age=2",
      "Access-Control-Allow-Origin": "*",
    });
  });

  const tiles = new Hono<Env>();
  tiles.get("/*", async (c) => {
    const tile = parseTilePath(c.req.path.slice(1));
    const full = tile.width === TILE_WIDTH;
    let data: Uint8Array;
    if (tile.level === "entries") {
      await readAccess(c, async () => {});
      data = await log.entryBundle(tile.index, tile.width);
    } else {
      data = await log.hashTile(tile.level, tile.index, tile.width);
    }
    const headers: Record<string, string> = {
      "Content-Type": "application/octet-stream",
      // A tile's bytes never change; a partial tile may be dropped once its full tile exists.
      "Cache-Control": full ? "public, max-age=31536000, immutable" : "public, max-age=3600",
      "Access-Control-Allow-Origin": "*",
      Vary: "Accept-Encoding",
    };
    const accepts = /\bgzip\b/i.test(c.req.header("Accept-Encoding") ?? "");
    if (accepts && data.length >= GZIP_MIN_BYTES) {
      data = gzipSync(data, { level: 1 });
      headers["Content-Encoding"] = "gzip";
    }
    return c.body(data as Uint8Array<ArrayBuffer>, 200, headers);
  });
  app.route("/tile", tiles);

  // ---- proofs and checkpoints (public: hashes only) ------------------------------------------

  app.get("/v1/proofs/inclusion", async (c) => {
    const size = optionalDecimal(c.req.query("size"), "size") ?? log.size;
    const hashText = c.req.query("leafHash");
    const index =
      hashText !== undefined
        ? await log.indexOfLeafHash(parseHash(hashText, "leafHash"))
        : decimal(c.req.query("index"), "index");
    if (index >= size) {
      throw new VellumError("OUT_OF_RANGE", `entry ${index} is not in the tree of size ${size}`);
    }
    const proof = await log.inclusionProof(index, size);
    return c.body(
      `{"index":${index},"treeSize":${size},"proof":${base64JsonArray(proof)}}`,
      200,
      JSON_HEADERS,
    );
  });

  app.get("/v1/proofs/consistency", async (c) => {
    const from = decimal(c.req.query("from"), "from");
    const to = optionalDecimal(c.req.query("to"), "to") ?? log.size;
    const proof = await log.consistencyProof(from, to);
    return json(c, { from, to, proof: proof.map(base64Encode) });
  });

  app.get("/v1/checkpoints/:size", async (c) => {
    const note = await log.checkpointAt(parseDecimal(c.req.param("size"), "size"));
    return c.body(note, 200, { "Content-Type": "text/plain; charset=utf-8" });
  });

  app.get("/v1/log", (c) =>
    json(c, {
      origin: log.origin,
      verifierKey: log.signer.verifierKey,
      timestampVerifierKey: log.signer.timestampVerifierKey,
      treeSize: log.size,
      checkpoint: log.checkpoint.note,
      checkpointTime: log.checkpoint.time,
      status: log.status,
      publicReads: options.publicReads === true,
      batch: { maxEntries: log.settings.batchMaxEntries, maxAgeMs: log.settings.batchMaxAgeMs },
      limits: { ...LIMITS, maxBatchEntries },
      publishedSize: log.published?.checkpoint.size ?? null,
      witnesses: log.witnessStatus(),
    }),
  );

  // ---- entries (read scope unless public) ---------------------------------------------------

  app.get("/v1/entries", readAccess, async (c) => {
    const start = optionalDecimal(c.req.query("start"), "start") ?? 0;
    const limit = Math.min(
      optionalDecimal(c.req.query("limit"), "limit") ?? 100,
      LIMITS.maxPageSize,
    );
    if (limit < 1) throw new HttpProblem("BAD_REQUEST", "limit must be at least 1");
    const entries = await log.entries(start, limit);
    const next =
      start + entries.length < log.size && entries.length > 0 ? start + entries.length : null;
    return json(c, { entries: entries.map(entryJson), next, treeSize: log.size });
  });
  app.get("/v1/entries/by-id/:id", readAccess, async (c) =>
    json(c, entryJson(await log.entryById(parseUuid(c.req.param("id"))))),
  );
  app.get("/v1/entries/by-leaf-hash/:hash", readAccess, async (c) =>
    json(c, entryJson(await log.entryByLeafHash(parseHash(c.req.param("hash"), "leaf hash")))),
  );
  app.get("/v1/entries/:index/receipt", readAccess, async (c) => {
    const receipt = await log.receipt(parseDecimal(c.req.param("index"), "index"));
    return c.body(`{${await receiptMembers(receipt)}}`, 200, JSON_HEADERS);
  });
  app.get("/v1/entries/:index", readAccess, async (c) =>
    json(c, entryJson(await log.entry(parseDecimal(c.req.param("index"), "index")))),
  );

  // ---- tokens (admin) ---------------------------------------------------------------------------

  const tokenJson = (t: TokenInfo) => ({
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    created: t.created,
    revoked: t.revoked ?? null,
  });
  app.get("/v1/tokens", requireScope("admin"), (c) =>
    json(c, { tokens: tokens.list().map(tokenJson) }),
  );
  app.post("/v1/tokens", requireScope("admin"), async (c) => {
    const body = (await readJson(
      c,
      4096,
      'send JSON: {"name": "...", "scopes": ["append", "read"]}',
    )) as { name?: unknown; scopes?: unknown } | null;
    const { name, scopes } = body ?? {};
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
    const { token, info } = await tokens.create(name, scopes as Scope[]);
    return json(c, { token, ...tokenJson(info) }, 201);
  });
  app.post("/v1/tokens/:id/revoke", requireScope("admin"), async (c) =>
    json(c, tokenJson(await tokens.revoke(c.req.param("id")))),
  );

  // ---- operations -------------------------------------------------------------------------------

  app.get("/healthz", (c) => json(c, { status: "ok" }));
  app.get("/readyz", (c) => {
    const ready = log.status === "open";
    return c.body(JSON.stringify({ status: ready ? "ready" : log.status }), ready ? 200 : 503, {
      "Content-Type": "application/json",
    });
  });
  app.get("/metrics", (c) =>
    c.body(metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }),
  );
  app.get("/openapi.json", (c) =>
    c.body(OPENAPI_TEXT, 200, { "Content-Type": "application/json" }),
  );
  app.get("/docs", (c) => c.html(renderDocs()));

  return app;
}

/** A human-readable page generated from the OpenAPI document (no external scripts). */
function renderDocs(): string {
  const doc = JSON.parse(OPENAPI_TEXT) as {
    info: { title: string; description?: string };
    paths: Record<string, Record<string, { summary?: string; description?: string }>>;
  };
  const esc = (s: string) => s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  const rows = Object.entries(doc.paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(
        ([method, op]) =>
          `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${esc(path)}</code></td><td>${esc(op.summary ?? "")}</td></tr>`,
      ),
    )
    .join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(doc.info.title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}td{padding:.3rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}</style></head>
<body><h1>${esc(doc.info.title)}</h1><p>${esc(doc.info.description ?? "")}</p>
<p>The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.</p>
<table>${rows}</table></body></html>`;
}
