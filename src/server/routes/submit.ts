/**
 * @module
 * Submissions: one entry (`POST /v1/entries`, raw body) or a batch (`POST /v1/entries/batch`,
 * JSON), answered with receipts, or with one multiproof for a batch (`?proof=multi`).
 */
import { type Context, Hono } from "hono";
import { MAX_PAYLOAD_SIZE } from "../../core/entry.js";
import { VellumError } from "../../core/errors.js";
import type { Submission } from "../../log/log.js";
import type { Receipt } from "../../log/receipt.js";
import { base64DecodeStrict, base64 as base64Encode } from "../../platform/base64.js";
import {
  type Env,
  JSON_HEADERS,
  json,
  LIMITS,
  type RouteContext,
  readBody,
  readJson,
} from "../http.js";
import { hasLoneSurrogate } from "../json-body.js";
import { HttpProblem, problemOf } from "../problem.js";
import { batchProofs, receiptMembers } from "../receipt-json.js";

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A batch entry that was refused: its status and problem, in the batch's answer. */
interface HttpError {
  readonly status: number;
  readonly error: { readonly code: string; readonly detail: string };
}

/**
 * The Idempotency-Key header as text. Node hands header values over as latin1 (one character
 * per byte), so the bytes the client sent are recovered and read as UTF-8, as a key in a batch
 * body is: the same key then means the same thing on both routes. Invalid UTF-8 is refused
 * rather than folded to U+FFFD, which made different keys collide.
 */
export function idempotencyKey(c: Context): string | undefined {
  const raw = c.req.header("Idempotency-Key");
  if (raw === undefined) return undefined;
  let key: string;
  try {
    key = UTF8.decode(Buffer.from(raw, "latin1"));
  } catch {
    throw new HttpProblem(
      "BAD_REQUEST",
      "the Idempotency-Key header is not valid UTF-8; send the key as UTF-8 bytes (or ASCII)",
    );
  }
  if (key.length === 0 || key.length > LIMITS.maxIdempotencyKeyLength) {
    throw new HttpProblem(
      "BAD_REQUEST",
      `Idempotency-Key must be 1-${LIMITS.maxIdempotencyKeyLength} characters`,
    );
  }
  return key;
}

export function submitRoutes(ctx: RouteContext): Hono<Env> {
  const { requireScope, maxBatchEntries, bodies } = ctx;
  const app = new Hono<Env>();
  const answers = submissionAnswers(ctx);

  /** Who submits: the authenticating token's public id, committed to in the entry's leaf. */
  const submitter = (c: Context<Env>): string => c.get("token")!.id;

  app.post("/v1/entries", requireScope("append"), async (c) => {
    const key = idempotencyKey(c);
    const payload = await readBody(c, MAX_PAYLOAD_SIZE, bodies);
    if (payload.length === 0)
      throw new HttpProblem("BAD_REQUEST", "the payload (request body) is empty");
    return answers.one(c, payload, key);
  });

  app.post("/v1/entries/batch", requireScope("append"), async (c) => {
    const proofMode = proofModeOf(c);
    if (!(c.req.header("Content-Type") ?? "").toLowerCase().startsWith("application/json")) {
      throw new HttpProblem("UNSUPPORTED_MEDIA_TYPE", "send the batch as application/json");
    }
    const body = await readJson(
      c,
      LIMITS.maxBatchBodyBytes,
      bodies,
      // A batch item takes 5 ("{", ":", ",", ":", "}" and its ","); 16 leaves room for more
      // members while keeping JSON.parse of the worst body short.
      { maxTokens: maxBatchEntries * 16 + 64 },
      "the body is not valid JSON",
    );
    const items = (body as { entries?: unknown })?.entries;
    if (!Array.isArray(items) || items.length === 0 || items.length > maxBatchEntries) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `"entries" must be an array of 1-${maxBatchEntries} objects`,
      );
    }
    // Validate everything first: a malformed batch changes nothing.
    const by = submitter(c);
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
        (typeof key !== "string" ||
          key.length === 0 ||
          key.length > LIMITS.maxIdempotencyKeyLength ||
          // A "\udXXX" escape alone has no UTF-8 form: encoding folds it to U+FFFD, so keys
          // that differ only there would collide.
          hasLoneSurrogate(key))
      ) {
        throw new HttpProblem(
          "BAD_REQUEST",
          `entries[${i}].idempotencyKey must be a string of 1-${LIMITS.maxIdempotencyKeyLength} characters (valid Unicode: no lone surrogate escapes)`,
        );
      }
      return key === undefined
        ? { payload, submitter: by }
        : { payload, idempotencyKey: key as string, submitter: by };
    });
    return answers.batch(c, parsed, proofMode);
  });

  return app;
}

/** A batch's proof mode from `?proof=`: full receipts, or one multiproof. */
export function proofModeOf(c: Context): "full" | "multi" {
  const proofMode = c.req.query("proof") ?? "full";
  if (proofMode !== "full" && proofMode !== "multi") {
    throw new HttpProblem("BAD_REQUEST", 'query parameter "proof" must be "full" or "multi"');
  }
  return proofMode;
}

/**
 * How submissions are answered, whatever route took them (raw entries, structured events): one
 * submission's receipt (201 new, 200 duplicate), or a batch's per-item outcomes in order, with
 * full receipts or one multiproof.
 */
export function submissionAnswers(ctx: RouteContext) {
  const { log, metrics } = ctx;

  async function one(c: Context<Env>, payload: Uint8Array, key: string | undefined) {
    let receipt: Receipt;
    try {
      const by = c.get("token")!.id;
      receipt = await log.submit(
        payload,
        key === undefined ? { submitter: by } : { idempotencyKey: key, submitter: by },
      );
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
  }

  async function batch(c: Context<Env>, parsed: Submission[], proofMode: "full" | "multi") {
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
    const stored = outcomes.filter((r): r is Receipt => !("error" in r));
    const { proofOf, encode } = await batchProofs(stored, (indices, size) =>
      log.multiproof(indices, size),
    );
    const results = await Promise.all(
      outcomes.map(async (r) =>
        "error" in r
          ? JSON.stringify(r)
          : `{"status":${r.duplicate ? 200 : 201},${await receiptMembers(r, proofOf(r), encode)}}`,
      ),
    );
    return c.body(`{"results":[${results.join(",")}]}`, 200, JSON_HEADERS);
  }

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
              submitter: r.submitter ?? null,
              leafHash: base64Encode(r.leafHash),
              duplicate: r.duplicate,
            },
      ),
    };
  }

  return { one, batch };
}
