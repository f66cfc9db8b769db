/**
 * @module
 * Operations: health, readiness, Prometheus metrics, the OpenAPI document and a page for it.
 */
import { readFileSync } from "node:fs";
import { Hono } from "hono";
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
    const ready = log.status === "open";
    // A failed log says why (the failure's class first, e.g. "disk full (ENOSPC): …"); a log
    // whose start-up rollback check waits (or failed) says what for.
    const check = log.startCheck;
    const reason =
      log.failure?.message ??
      (!ready && check !== undefined && check.state !== "passed" ? check.detail : undefined);
    const body = ready ? { status: "ready" } : { status: log.status, ...(reason && { reason }) };
    return c.body(JSON.stringify(body), ready ? 200 : 503, { "Content-Type": "application/json" });
  });
  app.get("/metrics", async (c) =>
    c.body(await metrics.render(), 200, { "Content-Type": METRICS_CONTENT_TYPE }),
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
