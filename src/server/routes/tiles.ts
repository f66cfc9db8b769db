/**
 * @module
 * C2SP tlog-tiles: the checkpoint, hash tiles and entry bundles, with the spec's content types
 * and cache headers, gzipped when asked. The main log's at the server root; every other log the
 * server keeps (the index log) under its own prefix, e.g. /index/checkpoint.
 */
import { gzipSync } from "node:zlib";
import { Hono, type MiddlewareHandler } from "hono";
import { VellumError } from "../../core/errors.js";
import { parseTilePath, TILE_WIDTH } from "../../core/tiles.js";
import type { Log } from "../../log/log.js";
import { recordRead } from "../access.js";
import type { Env, RouteContext } from "../http.js";
import { notYourTenant, tenantsOf } from "../tenants.js";

/** Tiles and bundles above this size are gzipped when the client accepts it. */
const GZIP_MIN_BYTES = 1024;

/**
 * `log` defaults to the main log; `prefix` is where the routes are mounted (e.g. "/index"). `publicBundles`: entry bundles need no token (the index log's
 * entries are revisions, roots and sizes, public by design).
 */
export function tileRoutes(
  ctx: RouteContext,
  options: {
    log?: Log;
    publicBundles?: boolean;
    prefix?: string;
    /** Who may read entry bundles (default: the read scope, or none when reads are public). */
    bundleAccess?: MiddlewareHandler<Env>;
    /** Whose entries the bundles hold, for the access log's record (default: the log's). */
    entries?: "entry" | "access";
  } = {},
): Hono<Env> {
  const { readAccess } = ctx;
  const log = options.log ?? ctx.log;
  const app = new Hono<Env>();

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

  app.get("/tile/*", async (c) => {
    const tile = parseTilePath(c.req.path.slice((options.prefix ?? "").length + 1));
    const full = tile.width === TILE_WIDTH;
    let data: Uint8Array;
    if (tile.level === "entries") {
      if (options.publicBundles !== true) {
        await (options.bundleAccess ?? readAccess)(c, async () => {});
        const tenants = tenantsOf(c);
        if (tenants !== undefined && (options.entries ?? "entry") === "entry") {
          throw notYourTenant(tenants, "entry bundles hold every tenant's entries");
        }
      }
      data = await log.entryBundle(tile.index, tile.width);
      // The main log's and the access log's bundles are entry contents: recorded first.
      if (options.publicBundles !== true) {
        const first = tile.index * TILE_WIDTH;
        await recordRead(
          c,
          ctx,
          () => Array.from({ length: tile.width }, (_, k) => first + k),
          options.entries ?? "entry",
        );
      }
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

  return app;
}
