/**
 * @module
 * Reading entries: pages, by index, id or leaf hash, and an entry's receipt. Needs the read
 * scope unless the log serves reads publicly.
 */
import { type Context, Hono } from "hono";
import { parseDecimal } from "../../core/bytes.js";
import { parseUuid } from "../../core/entry.js";
import type { LogEntry } from "../../log/log.js";
import { base64 as base64Encode } from "../../platform/base64.js";
import { recordRead } from "../access.js";
import {
  type Env,
  JSON_HEADERS,
  json,
  LIMITS,
  optionalDecimal,
  parseHash,
  type RouteContext,
} from "../http.js";
import { HttpProblem } from "../problem.js";
import { receiptMembers } from "../receipt-json.js";
import { notYourTenant, tenantsOf, visibleTo } from "../tenants.js";

function entryJson(e: LogEntry) {
  return {
    index: e.index,
    id: e.id,
    timestamp: e.timestamp,
    submitter: e.submitter ?? null,
    leafHash: base64Encode(e.leafHash),
    payload: base64Encode(e.payload),
  };
}

/** Refuses a tenant-limited token an entry that is not one of its tenants' events. */
function checkVisible(c: Context<Env>, entry: LogEntry): void {
  const tenants = tenantsOf(c);
  if (tenants !== undefined && !visibleTo(tenants, entry.payload)) {
    throw notYourTenant(tenants, `entry ${entry.index} is not`);
  }
}

export function entryRoutes(ctx: RouteContext): Hono<Env> {
  const { log, readAccess } = ctx;
  const app = new Hono<Env>();

  app.get("/v1/entries", readAccess, async (c) => {
    const start = optionalDecimal(c.req.query("start"), "start") ?? 0;
    const limit = Math.min(
      optionalDecimal(c.req.query("limit"), "limit") ?? 100,
      LIMITS.maxPageSize,
    );
    if (limit < 1) throw new HttpProblem("BAD_REQUEST", "limit must be at least 1");
    const all = await log.entries(start, limit);
    // A tenant-limited token sees its tenants' events of the page; `next` walks the whole log.
    const tenants = tenantsOf(c);
    const entries = tenants === undefined ? all : all.filter((e) => visibleTo(tenants, e.payload));
    await recordRead(c, ctx, () => entries.map((e) => e.index));
    const next = start + all.length < log.size && all.length > 0 ? start + all.length : null;
    return json(c, { entries: entries.map(entryJson), next, treeSize: log.size });
  });
  /** One entry's answer, once its read is recorded. */
  const one = async (c: Context<Env>, entry: LogEntry) => {
    checkVisible(c, entry);
    await recordRead(c, ctx, () => [entry.index]);
    return json(c, entryJson(entry));
  };
  app.get("/v1/entries/by-id/:id", readAccess, async (c) =>
    one(c, await log.entryById(parseUuid(c.req.param("id")))),
  );
  app.get("/v1/entries/by-leaf-hash/:hash", readAccess, async (c) =>
    one(c, await log.entryByLeafHash(parseHash(c.req.param("hash"), "leaf hash"))),
  );
  app.get("/v1/entries/:index/receipt", readAccess, async (c) => {
    const index = parseDecimal(c.req.param("index"), "index");
    if (tenantsOf(c) !== undefined) checkVisible(c, await log.entry(index));
    const receipt = await log.receipt(index);
    await recordRead(c, ctx, () => [receipt.index]);
    return c.body(`{${await receiptMembers(receipt)}}`, 200, JSON_HEADERS);
  });
  app.get("/v1/entries/:index", readAccess, async (c) =>
    one(c, await log.entry(parseDecimal(c.req.param("index"), "index"))),
  );

  return app;
}
