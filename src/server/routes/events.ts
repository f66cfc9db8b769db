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
 */
import { type Context, Hono } from "hono";
import { canonicalBytes } from "../../audit/canonical.js";
import { validateOcsfEvent } from "../../audit/ocsf.js";
import { MAX_PAYLOAD_SIZE } from "../../core/entry.js";
import { VellumError } from "../../core/errors.js";
import type { Submission } from "../../log/log.js";
import { type Env, LIMITS, type RouteContext, readJson } from "../http.js";
import { HttpProblem } from "../problem.js";
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

export function eventRoutes(ctx: RouteContext): Hono<Env> {
  const { requireScope, maxBatchEntries, bodies } = ctx;
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

  return app;
}
