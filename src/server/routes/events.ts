/**
 * @module
 * Structured audit events (spec/audit.md): `POST /v1/events` (one OCSF event as JSON) and
 * `POST /v1/events/batch` (`{"events": [...]}`). Each event is checked against its OCSF class
 * (src/audit/ocsf.ts; a wrong field is 400 INVALID_EVENT naming its JSON pointer) and logged as
 * its RFC 8785 canonical bytes (src/audit/canonical.ts), so the same event always has the same
 * bytes and its receipt proves exactly it. The leaf, receipts, tiles and witnesses are those of
 * any entry. An event's `metadata.uid` is its idempotency key unless the request names one: the
 * same event sent twice, by any client, is one entry, and another event with that uid is a
 * CONFLICT.
 *
 * `GET /v1/events?from=&to=` answers a time window with its completeness proof
 * (src/core/window.ts): the window's index range, every entry of a page of it, the boundary
 * entries, and one multiproof against a published checkpoint — pages continue with `cursor`,
 * pinned to that checkpoint's size. With an actor, action, resource or tenant, the verifiable
 * index answers instead (src/indexing/answers.ts): the key's events in the window, proven
 * complete against a revision of the index log.
 */
import { type Context, Hono } from "hono";
import { canonicalBytes } from "../../audit/canonical.js";
import { validateOcsfEvent } from "../../audit/ocsf.js";
import { MAX_PAYLOAD_SIZE } from "../../core/entry.js";
import { VellumError } from "../../core/errors.js";
import { KEY_KINDS } from "../../core/event-keys.js";
import { windowPageIndices } from "../../core/window.js";
import { firstAtOrAfter, indexPage } from "../../indexing/answers.js";
import type { Log, Submission } from "../../log/log.js";
import { base64 as base64Encode } from "../../platform/base64.js";
import { recordRead } from "../access.js";
import { type Env, json, LIMITS, optionalDecimal, type RouteContext, readJson } from "../http.js";
import { HttpProblem } from "../problem.js";
import { notYourTenant, tenantsOf } from "../tenants.js";
import { idempotencyKey, proofModeOf, submissionAnswers } from "./submit.js";

/** Largest event body (an event's canonical bytes must fit one entry). */
const MAX_EVENT_BODY = 4 * MAX_PAYLOAD_SIZE;

function requireJson(c: Context): void {
  if (!(c.req.header("Content-Type") ?? "").toLowerCase().startsWith("application/json")) {
    throw new HttpProblem("UNSUPPORTED_MEDIA_TYPE", "send events as application/json");
  }
}

/** The event's canonical bytes and idempotency key; throws INVALID_EVENT / TOO_LARGE. */
function toSubmission(
  value: unknown,
  path: string,
  key: string | undefined,
  submitter: string,
): Submission {
  const event = validateOcsfEvent(value, path);
  const payload = canonicalBytes(event);
  if (payload.length > MAX_PAYLOAD_SIZE) {
    throw new VellumError(
      "TOO_LARGE",
      `${path || "the event"} is ${payload.length} bytes as canonical JSON; the limit is ${MAX_PAYLOAD_SIZE}`,
    );
  }
  const uid = event.metadata.uid;
  const idempotency = key ?? (uid === undefined ? undefined : `ocsf:${uid}`);
  if (idempotency !== undefined && idempotency.length > LIMITS.maxIdempotencyKeyLength) {
    throw new VellumError(
      "INVALID_EVENT",
      `${path}/metadata/uid: at most ${LIMITS.maxIdempotencyKeyLength - 5} characters (it is the event's idempotency key)`,
    );
  }
  return idempotency === undefined
    ? { payload, submitter }
    : { payload, idempotencyKey: idempotency, submitter };
}

/** Most entries in one page of a window (each comes with its leaf; one multiproof for all). */
const MAX_WINDOW_PAGE = 1000;

/** Longest key value a query may name (characters). */
const MAX_KEY_VALUE = 1024;

/** A page cursor: the tree size the window was answered against and where the next page starts. */
function parseCursor(text: string | undefined): { size: number; at: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(0|[1-9]\d{0,15})\.(0|[1-9]\d{0,15})$/.exec(text);
  if (m === null)
    throw new HttpProblem("BAD_REQUEST", "cursor must be a cursor from a previous page");
  return { size: Number(m[1]), at: Number(m[2]) };
}

async function windowPage(
  log: Log,
  from: number,
  to: number,
  limit: number,
  cursor?: { size: number; at: number },
) {
  const published = log.published;
  if (published === undefined)
    throw new VellumError("UNAVAILABLE", "no checkpoint is published yet");
  const size = cursor?.size ?? published.checkpoint.size;
  const note = cursor === undefined ? published.note : await log.checkpointAt(size);
  const start = await firstAtOrAfter(log, size, from);
  const end = Math.max(start, await firstAtOrAfter(log, size, to));
  const pageStart = cursor === undefined ? start : cursor.at;
  if (pageStart < start || pageStart > end) {
    throw new HttpProblem("BAD_REQUEST", "the cursor is not inside this window");
  }
  const pageEnd = Math.min(end, pageStart + limit);
  const indices = windowPageIndices(size, start, end, pageStart, pageEnd);
  const leaves = await Promise.all(
    indices.map(async (i) => ({ index: i, leaf: (await log.entry(i)).leaf })),
  );
  const multiproof = indices.length === 0 ? [] : await log.multiproof(indices, size);
  return {
    treeSize: size,
    checkpoint: note,
    from,
    to,
    proof: {
      kind: "window",
      start,
      end,
      pageStart,
      pageEnd,
      leaves: leaves.map((l) => ({ index: l.index, leaf: base64Encode(l.leaf) })),
      multiproof: multiproof.map(base64Encode),
    },
    next: pageEnd < end ? `${size}.${pageEnd}` : null,
  };
}

/** The query parameters of an events or access query. */
export function parseQuery(c: Context<Env>) {
  const from = optionalDecimal(c.req.query("from"), "from");
  const to = optionalDecimal(c.req.query("to"), "to");
  const keys = KEY_KINDS.flatMap((kind) => {
    const value = c.req.query(kind);
    return value === undefined ? [] : [{ kind, value }];
  });
  const order = c.req.query("order") ?? "asc";
  if (order !== "asc" && order !== "desc") {
    throw new HttpProblem("BAD_REQUEST", 'order must be "asc" (oldest first) or "desc"');
  }
  const limit = Math.min(
    optionalDecimal(c.req.query("limit"), "limit") ?? MAX_WINDOW_PAGE,
    MAX_WINDOW_PAGE,
  );
  if (limit < 1) throw new HttpProblem("BAD_REQUEST", "limit must be at least 1");
  if (from !== undefined && to !== undefined && from > to) {
    throw new HttpProblem("BAD_REQUEST", "from must not be after to (from ≤ timestamp < to)");
  }
  if (keys.some((k) => k.value.length === 0 || k.value.length > MAX_KEY_VALUE)) {
    throw new HttpProblem("BAD_REQUEST", `a key's value is 1-${MAX_KEY_VALUE} characters`);
  }
  return { from, to, keys, order: order as "asc" | "desc", limit, cursor: c.req.query("cursor") };
}

/** A key query answered by `index` (spec/audit.md, "Index answers"), recorded first. */
export async function answerFromIndex(
  c: Context<Env>,
  ctx: RouteContext,
  index: RouteContext["index"],
  q: ReturnType<typeof parseQuery>,
  entries: "entry" | "access",
) {
  if (index === undefined) {
    throw new HttpProblem(
      "BAD_REQUEST",
      "this server keeps no index: ask for a time window (from, to) and filter the events",
    );
  }
  const indexer = index.indexer;
  if (indexer === undefined) {
    throw new VellumError("UNAVAILABLE", `the index is unavailable: ${index.failure}`);
  }
  // A tenant-limited token: the answer proves one of its tenants' lists (other keys filter on
  // the client), so nothing of another tenant is in it.
  const tenants = entries === "entry" ? tenantsOf(c) : undefined;
  const prove = tenants === undefined ? undefined : q.keys.find((k) => k.kind === "tenant");
  if (tenants !== undefined && (prove === undefined || !tenants.includes(prove.value))) {
    throw notYourTenant(tenants, "name one of them as the query's tenant");
  }
  if (tenants !== undefined && (q.from !== undefined || q.to !== undefined)) {
    // A window's boundary entries, which place it, may be any tenant's.
    throw notYourTenant(tenants, "time bounds need other entries as proof; filter by time here");
  }
  const answer = await indexPage(indexer, {
    ...(prove === undefined ? {} : { prove }),
    keys: q.keys,
    ...(q.from === undefined ? {} : { from: q.from }),
    ...(q.to === undefined ? {} : { to: q.to }),
    limit: q.limit,
    order: q.order,
    ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
  });
  await recordRead(
    c,
    ctx,
    () => [...new Set([...answer.window.leaves, ...answer.leaves].map((l) => l.index))],
    entries,
  );
  return json(c, answer);
}

export function eventRoutes(ctx: RouteContext): Hono<Env> {
  const { requireScope, maxBatchEntries, bodies, log, readAccess, index } = ctx;
  const answers = submissionAnswers(ctx);
  const app = new Hono<Env>();

  app.post("/v1/events", requireScope("append"), async (c) => {
    requireJson(c);
    const key = idempotencyKey(c);
    const body = await readJson(
      c,
      MAX_EVENT_BODY,
      bodies,
      { maxTokens: 64 * 1024 },
      "the event is not valid JSON",
    );
    const it = toSubmission(body, "", key, c.get("token")!.id);
    return answers.one(c, it.payload, it.idempotencyKey);
  });

  app.post("/v1/events/batch", requireScope("append"), async (c) => {
    const proofMode = proofModeOf(c);
    requireJson(c);
    const body = await readJson(
      c,
      LIMITS.maxBatchBodyBytes,
      bodies,
      { maxTokens: maxBatchEntries * 256 + 64 },
      "the body is not valid JSON",
    );
    const events = (body as { events?: unknown })?.events;
    if (!Array.isArray(events) || events.length === 0 || events.length > maxBatchEntries) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `"events" must be an array of 1-${maxBatchEntries} OCSF events`,
      );
    }
    // Every event checked first: one invalid event changes nothing.
    const by = c.get("token")!.id;
    const parsed = events.map((e, i) => toSubmission(e, `/events/${i}`, undefined, by));
    return answers.batch(c, parsed, proofMode);
  });

  app.get("/v1/events", readAccess, async (c) => {
    const q = parseQuery(c);
    if (q.keys.length > 0) {
      // A key named: the verifiable index proves the answer (spec/audit.md, "Index answers").
      return answerFromIndex(c, ctx, index, q, "entry");
    }
    const { from, to, order, limit, cursor } = q;
    const tenants = tenantsOf(c);
    if (tenants !== undefined) {
      throw notYourTenant(tenants, "a time window holds every tenant's entries; query by tenant");
    }
    if (from === undefined || to === undefined) {
      throw new HttpProblem(
        "BAD_REQUEST",
        "name a window (from and to, milliseconds since the epoch: from ≤ timestamp < to), or an actor, action, resource or tenant",
      );
    }
    if (order !== "asc")
      throw new HttpProblem("BAD_REQUEST", "a time window is answered oldest first");
    const page = await windowPage(log, from, to, limit, parseCursor(cursor));
    await recordRead(c, ctx, () => page.proof.leaves.map((l) => l.index));
    return json(c, page);
  });

  return app;
}
