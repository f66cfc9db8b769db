/**
 * The HTTP API in process (`app.request`, no network), one route group per file: Operations: health, readiness, metrics, the OpenAPI document and /docs.
 * Checked against what the verifier library and first-principles recomputation say; errors are
 * asserted by their stable `code`, never by message.
 */
import { describe, expect, it } from "vitest";
import { payloadOf, submit } from "./app-fixtures.js";
import { call, expectJson, expectProblem, get, openHarness } from "./helpers.js";

// ---------------------------------------------------------------------------------------------

describe("operations", () => {
  it("/healthz and /readyz", async () => {
    const h = await openHarness();
    expect(await expectJson(await get(h.app, "/healthz"), 200)).toEqual({ status: "ok" });
    expect(await expectJson(await get(h.app, "/readyz"), 200)).toEqual({ status: "ready" });
  });

  /** The value of one Prometheus sample line, e.g. `name{code="X"} 3`. */
  const sample = (text: string, series: string): number | undefined => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it("/metrics counts submissions, errors and requests, and reports the tree size", async () => {
    const h = await openHarness();
    const key = { "Idempotency-Key": "one" };
    await expectJson(await submit(h, payloadOf(1), key), 201);
    await expectJson(await submit(h, payloadOf(2)), 201);
    await expectJson(await submit(h, payloadOf(1), key), 200);
    await expectProblem(await submit(h, new Uint8Array(0)), 400, "BAD_REQUEST");
    await expectProblem(
      await get(h.app, "/v1/entries/99", { token: h.tokens.read }),
      404,
      "NOT_FOUND",
    );
    await expectProblem(await get(h.app, "/nowhere"), 404, "ROUTE_NOT_FOUND");
    await expectProblem(await get(h.app, "/v1/tokens"), 401, "UNAUTHENTICATED");
    const res = await get(h.app, "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("# TYPE vellum_submissions_total counter");
    expect(text).toContain("# TYPE vellum_errors_total counter");
    expect(text).toContain("# TYPE vellum_tree_size gauge");
    expect(sample(text, 'vellum_submissions_total{result="created"}')).toBe(2);
    expect(sample(text, 'vellum_submissions_total{result="duplicate"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="BAD_REQUEST"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="NOT_FOUND"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="ROUTE_NOT_FOUND"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="UNAUTHENTICATED"}')).toBe(1);
    expect(sample(text, "vellum_tree_size")).toBe(2);
    expect(sample(text, 'vellum_http_requests_total{class="2xx"}')).toBe(3);
    expect(sample(text, 'vellum_http_requests_total{class="4xx"}')).toBe(4);
    // Every sample line is `name[{labels}] number` (blank lines separate families).
    for (const line of text
      .trim()
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? -?[0-9.e+]+$/);
    }
  });

  it("/metrics counts one error per error answer (a 405 is not also a ROUTE_NOT_FOUND)", async () => {
    const h = await openHarness();
    await expectProblem(await call(h.app, "DELETE", "/checkpoint"), 405, "METHOD_NOT_ALLOWED");
    const text = await (await get(h.app, "/metrics")).text();
    expect(sample(text, 'vellum_errors_total{code="METHOD_NOT_ALLOWED"}')).toBe(1);
    expect(sample(text, 'vellum_errors_total{code="ROUTE_NOT_FOUND"}')).toBeUndefined();
  });

  it("/openapi.json is an OpenAPI 3.1 document", async () => {
    const h = await openHarness();
    const doc = await expectJson<{ openapi: string; info: { title: string } }>(
      await get(h.app, "/openapi.json"),
      200,
    );
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBe("Vellum HTTP API");
  });

  it("/openapi.json documents every route the app serves", async () => {
    const h = await openHarness();
    const doc = await expectJson<{ paths: Record<string, Record<string, unknown>> }>(
      await get(h.app, "/openapi.json"),
      200,
    );
    const missing = h.app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path}`)
      .filter((route, i, all) => all.indexOf(route) === i)
      .filter((route) => {
        const [method, path] = route.split(" ") as [string, string];
        if (path === "/tile/*") {
          return !Object.keys(doc.paths).some((p) => p.startsWith("/tile/"));
        }
        const openapiPath = path.replace(/:([A-Za-z]+)/g, "{$1}");
        return doc.paths[openapiPath]?.[method.toLowerCase()] === undefined;
      });
    expect(missing).toEqual([]);
  });

  it("/docs is a self-contained HTML page", async () => {
    const h = await openHarness();
    const res = await get(h.app, "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^text\/html; charset=utf-8$/i);
    const html = await res.text();
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain("<title>Vellum HTTP API 0.1.0 — API reference</title>");
    expect(html).toContain('href="/openapi.json"');
    // One inline script (try it), nothing loaded from elsewhere: test/server/docs.test.ts.
    expect(html).not.toMatch(/<script[^>]*\ssrc=/i);
  });
});
