/**
 * Shared set-up for the HTTP handler tests: the hono app over a log on the memory driver, one
 * token per scope, in-process requests (`app.request`, no network), and checks that rebuild what
 * the server says from first principles (RFC 6962 hashing, the leaf encoding) instead of asking
 * the code under test.
 */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { expect } from "vitest";
import { type Scope, TokenStore, type TokenStoreOptions } from "../../src/auth/tokens.js";
import { base64Decode, base64Encode, hexEncode } from "../../src/core/bytes.js";
import { encodeLeaf, parseUuid } from "../../src/core/entry.js";
import { indexKeysOfPayload } from "../../src/core/event-keys.js";
import type { Logger } from "../../src/core/logger.js";
import { hashChildren, hashLeaf } from "../../src/core/rfc6962.js";
import { Indexer } from "../../src/indexing/engine.js";
import type { LogConfig } from "../../src/log/log.js";
import { Log } from "../../src/log/log.js";
import { createApp } from "../../src/server/app.js";
import { Metrics } from "../../src/server/metrics.js";
import { type ProblemCode, statusOf } from "../../src/server/problem.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { openMemoryLog, SEED } from "../log/helpers.js";

/** The access log's own signing key in tests (not the log's). */
export const ACCESS_SEED = new Uint8Array(32).fill(0xac);
export type App = ReturnType<typeof createApp>;

export interface HarnessOptions {
  readonly publicReads?: boolean;
  readonly maxBatchEntries?: number;
  readonly bodyBudgetBytes?: number;
  readonly log?: Partial<LogConfig>;
  readonly tokenStore?: TokenStoreOptions;
  /** Where the app's request lines go (default: nowhere). */
  readonly logger?: Logger;
  /** The app's metrics (default: a fresh registry without process metrics). */
  readonly metrics?: Metrics;
  /** Keep the verifiable index of the log's events (index queries, /index/). */
  readonly index?: boolean;
  /** Keep the access log (every read of entry contents recorded; /access/). */
  readonly access?: boolean;
}

/** Tokens by what they may do; `all` holds every scope. */
export interface Tokens {
  readonly all: string;
  readonly admin: string;
  readonly append: string;
  readonly read: string;
  /** With `access`: a token with the audit scope only. */
  readonly audit?: string;
}

export async function openHarness(options: HarnessOptions = {}) {
  const db = new MemoryDatabase();
  const { log } = await openMemoryLog(db, options.log ?? {});
  const tokenStore = await TokenStore.open(db.namespace("tokens"), options.tokenStore ?? {});
  const make = async (name: string, scopes: Scope[]) =>
    (await tokenStore.create(name, scopes)).token;
  const tokens: Tokens = {
    all: await make("all", ["admin", "append", "read"]),
    ...(options.access === true ? { audit: await make("auditor", ["audit"]) } : {}),
    admin: await make("admin only", ["admin"]),
    append: await make("append only", ["append"]),
    read: await make("read only", ["read"]),
  };
  // Wired the way `vellum serve` wires it (src/cli/serve.ts): the app itself adds no gauges.
  const metrics = options.metrics ?? new Metrics();
  metrics.gauge("vellum_tree_size", "Entries in the latest published checkpoint.", () => log.size);
  const indexer = options.index === true ? await openMemoryIndexer(db, log) : undefined;
  const accessLog =
    options.access === true
      ? await Log.open({
          origin: `${log.origin}/access`,
          // Its own key, as `vellum serve` gives it (DATA/access.key).
          seed: ACCESS_SEED,
          kv: db.namespace("access-log"),
          checkpointIntervalMs: 0,
          batchMaxAgeMs: 0,
        })
      : undefined;
  const accessIndexer =
    accessLog !== undefined && indexer !== undefined
      ? await openMemoryIndexer(
          db,
          accessLog,
          true,
          { seed: ACCESS_SEED },
          { log: "access-index-log", store: "access-index" },
        )
      : undefined;
  const app = createApp({
    log,
    ...(indexer === undefined
      ? {}
      : { index: { indexLog: indexer.indexLog, indexer, failure: undefined } }),
    ...(accessLog === undefined ? {} : { accessLog }),
    ...(accessIndexer === undefined
      ? {}
      : {
          accessIndex: {
            indexLog: accessIndexer.indexLog,
            indexer: accessIndexer,
            failure: undefined,
          },
        }),
    tokens: tokenStore,
    metrics,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.publicReads === undefined ? {} : { publicReads: options.publicReads }),
    ...(options.maxBatchEntries === undefined ? {} : { maxBatchEntries: options.maxBatchEntries }),
    ...(options.bodyBudgetBytes === undefined ? {} : { bodyBudgetBytes: options.bodyBudgetBytes }),
  });
  return { app, log, db, tokenStore, tokens, metrics, indexer, accessLog, accessIndexer };
}

/** The index of `log`'s events as `vellum serve` keeps it, in memory: its log and its store. */
export async function openMemoryIndexer(
  db: MemoryDatabase,
  log: Log,
  start = true,
  indexLogConfig: Partial<LogConfig> = {},
  names = { log: "index-log", store: "index" },
) {
  const indexLog = await Log.open({
    origin: `${log.origin}/index`,
    seed: SEED,
    kv: db.namespace(names.log),
    checkpointIntervalMs: 0,
    batchMaxAgeMs: 0,
    ...indexLogConfig,
  });
  const indexer = await Indexer.open({
    source: log,
    indexLog,
    kv: db.namespace(names.store),
    keysOf: indexKeysOfPayload,
    pollMs: 5,
    revisionIntervalMs: 0,
  });
  if (start) indexer.start();
  return indexer;
}

export type Harness = Awaited<ReturnType<typeof openHarness>>;

export type Body = string | Uint8Array;

export interface Call {
  readonly token?: string;
  readonly headers?: Record<string, string>;
  readonly body?: Body;
}

export function call(app: App, method: string, path: string, init: Call = {}): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.Authorization = `Bearer ${init.token}`;
  return Promise.resolve(
    app.request(path, {
      method,
      headers,
      ...(init.body === undefined ? {} : { body: init.body as Uint8Array<ArrayBuffer> | string }),
    }),
  );
}

export const get = (app: App, path: string, init: Call = {}) => call(app, "GET", path, init);
export const post = (app: App, path: string, init: Call = {}) => call(app, "POST", path, init);

export const postJson = (app: App, path: string, value: unknown, init: Call = {}) =>
  post(app, path, {
    ...init,
    headers: { "Content-Type": "application/json", ...init.headers },
    body: JSON.stringify(value),
  });

/** The body bytes, gunzipped when the response says gzip. */
export async function bodyBytes(res: Response): Promise<Uint8Array> {
  const raw = new Uint8Array(await res.arrayBuffer());
  return res.headers.get("Content-Encoding") === "gzip" ? new Uint8Array(gunzipSync(raw)) : raw;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
}

/** Throws (as a plain Error, for the fuzzer) unless `res` is a well-formed problem answer. */
export async function readProblem(res: Response, method = "GET"): Promise<ProblemBody | null> {
  const type = res.headers.get("Content-Type");
  if (type !== "application/problem+json") {
    throw new Error(`status ${res.status} with Content-Type ${type}, not application/problem+json`);
  }
  if (method === "HEAD") return null;
  const text = new TextDecoder().decode(await bodyBytes(res));
  let body: ProblemBody;
  try {
    body = JSON.parse(text) as ProblemBody;
  } catch {
    throw new Error(`problem body is not JSON: ${text.slice(0, 200)}`);
  }
  const shapeOk =
    body !== null &&
    typeof body === "object" &&
    body.type === "about:blank" &&
    typeof body.title === "string" &&
    body.title.length > 0 &&
    body.status === res.status &&
    typeof body.code === "string" &&
    /^[A-Z_]+$/.test(body.code) &&
    statusOf(body.code as ProblemCode) === res.status &&
    typeof body.detail === "string" &&
    body.detail.length > 0;
  if (!shapeOk) throw new Error(`malformed problem body for status ${res.status}: ${text}`);
  return body;
}

/** Asserts status, problem+json and the stable `code`; returns the body. */
export async function expectProblem(
  res: Response,
  status: number,
  code: ProblemCode,
): Promise<ProblemBody> {
  const text = await res.clone().text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  const body = (await readProblem(res))!;
  expect(body.code).toBe(code);
  return body;
}

export async function expectJson<T = Record<string, unknown>>(
  res: Response,
  status: number,
): Promise<T> {
  const text = await res.clone().text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  expect(res.headers.get("Content-Type")).toBe("application/json");
  return JSON.parse(text) as T;
}

// ---- independent reference computations -----------------------------------------------------

/** An entry as the API answers it (GET /v1/entries/...). */
export interface EntryJson {
  index: number;
  id: string;
  timestamp: number;
  /** The submitting token's id (version-2 leaves), null for version-1 leaves. */
  submitter: string | null;
  leafHash: string;
  payload: string;
}

/** A receipt as the API answers it (POST /v1/entries, GET /v1/entries/:index/receipt). */
export interface ReceiptJson {
  index: number;
  id: string;
  timestamp: number;
  submitter: string | null;
  leafHash: string;
  treeSize: number;
  checkpoint: string;
  receipt: string;
  duplicate: boolean;
}

/**
 * RFC 6962 §2.1 Merkle Tree Hash, straight from the definition: SHA-256("") for no leaves, else
 * split at the largest power of two below n.
 */
export function mth(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return new Uint8Array(createHash("sha256").digest());
  if (hashes.length === 1) return hashes[0]!;
  let k = 1;
  while (k * 2 < hashes.length) k *= 2;
  return hashChildren(mth(hashes.slice(0, k)), mth(hashes.slice(k)));
}

/** The leaf an entry commits to, rebuilt from its JSON fields (src/core/entry.ts layout). */
export function leafOf(e: EntryJson): Uint8Array {
  return encodeLeaf({
    id: parseUuid(e.id),
    timestamp: e.timestamp,
    ...(e.submitter === null ? {} : { submitter: e.submitter }),
    payload: base64Decode(e.payload),
  });
}

/** Every published entry, paging through GET /v1/entries with `next`. */
export async function allEntries(app: App, token?: string): Promise<EntryJson[]> {
  const out: EntryJson[] = [];
  let start: number | null = 0;
  while (start !== null) {
    const page: { entries: EntryJson[]; next: number | null } = await expectJson<{
      entries: EntryJson[];
      next: number | null;
    }>(
      await get(app, `/v1/entries?start=${start}&limit=1000`, token === undefined ? {} : { token }),
      200,
    );
    out.push(...page.entries);
    start = page.next;
  }
  return out;
}

export const enc = (text: string) => new TextEncoder().encode(text);
export const b64 = base64Encode;
export const b64url = (bytes: Uint8Array) =>
  base64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
export const hex = hexEncode;
export { hashLeaf };
