/**
 * @module
 * What every route module shares: the app's environment type, limits, and the small pieces that
 * read requests (bodies with limits, query numbers, hashes) and write JSON answers. Errors are
 * thrown as HttpProblem / VellumError; app.ts turns them into problem+json.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AccessRecorder } from "../audit/access.js";
import type { Scope, TokenInfo, TokenStore } from "../auth/tokens.js";
import { base64Decode, concatBytes, hexDecode, parseDecimal } from "../core/bytes.js";
import { MAX_PAYLOAD_SIZE } from "../core/entry.js";
import { VellumError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { HASH_SIZE } from "../core/rfc6962.js";
import type { Indexer } from "../indexing/engine.js";
import type { Log } from "../log/log.js";
import type { BodyBudget } from "./body-budget.js";
import { type JsonShape, parseJsonBody } from "./json-body.js";
import type { Metrics } from "./metrics.js";
import { HttpProblem } from "./problem.js";

/**
 * The app's environment: `requestId` is the request's id (app.ts: X-Request-Id, logged, and
 * `instance` in problem bodies); `token` is the bearer token that authenticated the request (set
 * by requireScope; undefined on public routes), so a route can say who did what.
 */
export type Env = { Variables: { requestId: string; token: TokenInfo | undefined } };

export const LIMITS = {
  maxPayloadSize: MAX_PAYLOAD_SIZE,
  maxBatchEntries: 10_000,
  maxBatchBodyBytes: 16 * 1024 * 1024,
  maxPageSize: 1000,
  maxIdempotencyKeyLength: 200,
};

/** What the route modules are built from (see createApp). */
export interface RouteContext {
  readonly log: Log;
  readonly tokens: TokenStore;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly publicReads: boolean;
  readonly maxBatchEntries: number;
  /** The server-wide budget for request bodies in flight (readBody reserves from it). */
  readonly bodies: BodyBudget;
  /** Middleware requiring a bearer token with `scope` (unless `unless`). */
  readonly requireScope: (scope: Scope, unless?: boolean) => MiddlewareHandler<Env>;
  /** requireScope("read"), or nothing when reads are public. */
  readonly readAccess: MiddlewareHandler<Env>;
  /** Records reads in the access log, when the server keeps one (src/server/access.ts). */
  readonly access: AccessRecorder | undefined;
  /** The verifiable index of the access log, when the server keeps both. */
  readonly accessIndex: RouteContext["index"];
  /** The verifiable index of the log's events, when the server keeps one (app.ts). */
  readonly index:
    | {
        readonly indexLog: Log;
        readonly indexer: Indexer | undefined;
        readonly failure: string | undefined;
      }
    | undefined;
}

export const JSON_HEADERS = { "Content-Type": "application/json" } as const;
export const json = (c: Context, body: unknown, status: 200 | 201 = 200) =>
  c.body(JSON.stringify(body), status, JSON_HEADERS);

/**
 * Reads the request body, refusing more than `limit` bytes with 413, and reserving its bytes in
 * the server-wide `budget` first (503 OVERLOADED when it is spent; app.ts gives them back once
 * the request is answered). A declared Content-Length is checked and reserved before reading; a
 * chunked body is counted and reserved as it streams. (hono's bodyLimit middleware wraps every
 * body in a web stream, which made each POST ~4x more expensive.)
 */
export async function readBody(c: Context, limit: number, budget: BodyBudget): Promise<Uint8Array> {
  const tooLarge = () =>
    new HttpProblem("PAYLOAD_TOO_LARGE", `the body exceeds the limit of ${limit} bytes`);
  const declared = c.req.header("Content-Length");
  if (declared !== undefined) {
    const length = Number(declared);
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new HttpProblem("BAD_REQUEST", "Content-Length is not a valid length");
    }
    if (length > limit) throw tooLarge();
    budget.reserve(c.req.raw, length);
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
    try {
      budget.reserve(c.req.raw, value.length);
    } catch (e) {
      await reader.cancel();
      throw e;
    }
    parts.push(value);
  }
  return concatBytes(...parts);
}

/**
 * The body as JSON (at most `limit` bytes, of the `shape` the route needs: see json-body.ts);
 * anything unparsable is 400 with `hint`.
 */
export async function readJson(
  c: Context,
  limit: number,
  budget: BodyBudget,
  shape: JsonShape,
  hint: string,
): Promise<unknown> {
  return parseJsonBody(await readBody(c, limit, budget), shape, hint);
}

export function decimal(value: string | undefined, what: string): number {
  if (value === undefined)
    throw new HttpProblem("BAD_REQUEST", `missing query parameter "${what}"`);
  return parseDecimal(value, what);
}

export function optionalDecimal(value: string | undefined, what: string): number | undefined {
  return value === undefined ? undefined : parseDecimal(value, what);
}

/** A leaf hash in a path or query: standard or URL-safe base64 (padding optional), or hex. */
export function parseHash(text: string, what: string): Uint8Array {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return hexDecode(text, what);
  let b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  if (b64.length === 43) b64 += "=";
  const bytes = base64Decode(b64, what);
  if (bytes.length !== HASH_SIZE) {
    throw new VellumError("MALFORMED", `${what} must be 32 bytes, got ${bytes.length}`);
  }
  return bytes;
}
