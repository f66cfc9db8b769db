/**
 * @module
 * Recording reads in the access log (src/audit/access.ts) from a route: who (the request's
 * token, the client's address), what (the route, its query, the entries returned). A route
 * that returns entry contents calls `recordRead` after it has what it will send and before it
 * sends it: the answer goes out only once its record is durable, or the read is refused (503).
 */
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context } from "hono";
import { routePath } from "hono/route";
import type { Env, RouteContext } from "./http.js";

function clientAddress(c: Context<Env>): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined; // not over a socket (app.request in tests)
  }
}

export async function recordRead(
  c: Context<Env>,
  ctx: RouteContext,
  /** The indices returned; only computed when the server keeps an access log. */
  entries: () => readonly number[],
  /** Whose entries: the log's, or the access log's own (reads of the record of reads). */
  of: "entry" | "access" = "entry",
): Promise<void> {
  if (ctx.access === undefined) return;
  const token = c.get("token");
  const search = new URL(c.req.url).search.slice(1);
  await ctx.access.record({
    token: token === undefined ? undefined : { id: token.id, name: token.name },
    client: clientAddress(c),
    method: c.req.method,
    route: routePath(c),
    ...(search === "" ? {} : { query: search }),
    entries: entries(),
    of,
    ...(token?.tenants === undefined ? {} : { tenants: token.tenants }),
    requestId: c.get("requestId"),
    time: Date.now(),
  });
}
