/**
 * @module
 * Operations: health, readiness, Prometheus metrics, the OpenAPI document and its reference page
 * (/docs, rendered from it: src/server/docs.ts).
 */
import { readFileSync } from "node:fs";
import { Hono } from "hono";
import { DOCS_CSP, renderDocs } from "../docs.js";
import { type Env, json, type RouteContext } from "../http.js";
import { METRICS_CONTENT_TYPE } from "../metrics.js";

export const OPENAPI_TEXT = readFileSync(
  new URL("../../../spec/openapi.json", import.meta.url),
  "utf8",
);

export function operationRoutes(ctx: RouteContext): Hono<Env> {
  const { log, metrics } = ctx;
  const app = new Hono<Env>();

  app.get("/healthz", (c) => json(c, { status: "ok" }));
  app.get("/readyz", (c) => {
    // Ready when the log is open and, where reads are recorded, the access log too (reads of
    // entry contents are refused while it is not: a balancer should send them elsewhere).
    const accessLog = ctx.access?.log;
    const unready =
      log.status !== "open" ? log : accessLog?.status !== "open" ? accessLog : undefined;
    if (unready === undefined) return json(c, { status: "ready" });
    // A failed log says why (the failure's class first, e.g. "disk full (ENOSPC): …"); a log
    // whose start-up rollback check waits (or failed) says what for.
    const check = unready.startCheck;
    const detail =
      unready.failure?.message ??
      (check !== undefined && check.state !== "passed" ? check.detail : undefined);
    const reason = unready === log || detail === undefined ? detail : `the access log: ${detail}`;
    const body = { status: unready.status, ...(reason && { reason }) };
    return c.body(JSON.stringify(body), 503, { "Content-Type": "application/json" });
  });
  app.get("/metrics", async (c) =>
    c.body(await metrics.render(), 200, { "Content-Type": METRICS_CONTENT_TYPE }),
  );
  app.get("/openapi.json", (c) =>
    c.body(OPENAPI_TEXT, 200, { "Content-Type": "application/json" }),
  );
  // Rendered once, on first request (the document does not change while the server runs).
  let docs: string | undefined;
  app.get("/docs", (c) => {
    docs ??= renderDocs(OPENAPI_TEXT);
    return c.body(docs, 200, {
      "Content-Type": "text/html; charset=UTF-8",
      "Content-Security-Policy": DOCS_CSP,
    });
  });

  return app;
}
