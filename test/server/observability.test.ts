/**
 * What operators read from the log server: one structured log line per request (request id,
 * route pattern, status, latency, token id; never the token nor the payload), the request id
 * echoed in X-Request-Id and in every problem body as `instance`, and /metrics through
 * prom-client (request latency by route, build info, process metrics, Prometheus naming).
 * The logger is the real pino logger of `vellum serve` (src/platform/logger.ts) writing JSON into
 * arrays instead of stdout/stderr.
 */
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/platform/logger.js";
import { Metrics } from "../../src/server/metrics.js";
import { enc, expectJson, get, type Harness, openHarness, post } from "./helpers.js";

type Line = Record<string, unknown>;

async function harnessWithLog(options: { metrics?: Metrics } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const logger = createLogger({
    name: "vellum",
    level: "info",
    pretty: false,
    out: { write: (s: string) => out.push(s) },
    err: { write: (s: string) => err.push(s) },
  });
  const h = await openHarness({ logger, ...options });
  const lines = (): Line[] => out.map((s) => JSON.parse(s) as Line);
  return { h, out, err, lines };
}

const submit = (h: Harness, payload: string, headers: Record<string, string> = {}) =>
  post(h.app, "/v1/entries", { token: h.tokens.append, body: enc(payload), headers });

describe("request log lines", () => {
  it("one JSON line per request: id, route pattern, status, latency, token id; no secret, no payload", async () => {
    const { h, out, lines } = await harnessWithLog();
    const secret = "a very particular payload 7f3a";
    const created = await submit(h, secret, { "X-Request-Id": "req-42" });
    expect(created.status).toBe(201);
    expect(created.headers.get("X-Request-Id")).toBe("req-42");
    const receipt = await expectJson<{ index: number }>(created, 201);
    await expectJson(
      await get(h.app, `/v1/entries/${receipt.index}`, { token: h.tokens.read }),
      200,
    );
    await get(h.app, "/no/such/route");

    const [first, second, third] = lines();
    expect(lines()).toHaveLength(3);
    expect(first).toMatchObject({
      level: "info",
      name: "vellum",
      msg: "request",
      requestId: "req-42",
      method: "POST",
      route: "/v1/entries",
      status: 201,
    });
    expect(typeof first!.ms).toBe("number");
    expect(typeof first!.time).toBe("number");
    // The token's id, as `vellum tokens list` shows it, not the token.
    const appendId = h.tokenStore.verify(h.tokens.append)!.id;
    expect(first!.token).toBe(appendId);
    // The matched pattern, not the path with its index.
    expect(second).toMatchObject({ route: "/v1/entries/:index", status: 200, method: "GET" });
    expect(second!.token).toBe(h.tokenStore.verify(h.tokens.read)!.id);
    expect(third).toMatchObject({ route: "unmatched", status: 404, token: null });
    // A generated id when none was sent: a UUID.
    expect(second!.requestId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );

    const all = out.join("");
    for (const token of Object.values(h.tokens)) expect(all).not.toContain(token);
    expect(all).not.toContain(secret);
    expect(all).not.toContain(Buffer.from(secret).toString("base64"));
  });

  it("every problem body carries the request id as `instance`; insane incoming ids are replaced", async () => {
    const { h, lines } = await harnessWithLog();
    const unauth = await get(h.app, "/v1/entries/0", { headers: { "X-Request-Id": "abc.DEF:1" } });
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get("X-Request-Id")).toBe("abc.DEF:1");
    expect(((await unauth.json()) as { instance: string }).instance).toBe("abc.DEF:1");

    for (const bad of ["has space", "x".repeat(129), 'quote"d', "<script>"]) {
      const res = await get(h.app, "/v1/entries/0", { headers: { "X-Request-Id": bad } });
      const id = res.headers.get("X-Request-Id");
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(((await res.json()) as { instance: string }).instance).toBe(id);
    }
    const notFound = await get(h.app, "/nowhere");
    const body = (await notFound.json()) as { instance: string; code: string };
    expect(body.code).toBe("ROUTE_NOT_FOUND");
    expect(body.instance).toBe(notFound.headers.get("X-Request-Id"));
    // The log line of each answer names the same id.
    expect(lines().map((l) => l.requestId)).toContain(body.instance);
  });

  it("--log-level warn drops request lines; bad levels are refused", async () => {
    const out: string[] = [];
    const logger = createLogger({
      name: "vellum",
      level: "warn",
      pretty: false,
      out: { write: (s: string) => out.push(s) },
      err: { write: (s: string) => out.push(s) },
    });
    const h = await openHarness({ logger });
    await submit(h, "x");
    expect(out).toEqual([]);
    expect(() => createLogger({ name: "vellum", level: "loud" })).toThrow(
      /--log-level must be one of/,
    );
  });
});

describe("/metrics through prom-client", () => {
  it("request latency by route, build info, process metrics, Prometheus naming", async () => {
    const { h } = await harnessWithLog({
      metrics: new Metrics({ processMetrics: true, version: "9.9.9" }),
    });
    await submit(h, "one");
    await submit(h, "two");
    await get(h.app, "/v1/entries/0", { token: h.tokens.read });
    await get(h.app, "/v1/entries/1", { token: h.tokens.read });
    const text = await (await get(h.app, "/metrics")).text();
    const sample = (series: string) =>
      Number(
        text
          .split("\n")
          .find((l) => l.startsWith(`${series} `))
          ?.slice(series.length + 1),
      );
    expect(text).toContain("# TYPE vellum_http_request_duration_seconds histogram");
    expect(
      sample('vellum_http_request_duration_seconds_count{route="/v1/entries",method="POST"}'),
    ).toBe(2);
    // Two paths, one route pattern: one series.
    expect(
      sample('vellum_http_request_duration_seconds_count{route="/v1/entries/:index",method="GET"}'),
    ).toBe(2);
    expect(text).not.toMatch(/route="\/v1\/entries\/[01]"/);
    expect(text).toMatch(/^vellum_build_info\{version="9\.9\.9",node="[\d.]+"\} 1$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
    // Existing series keep their names and labels.
    expect(sample('vellum_submissions_total{result="created"}')).toBe(2);
    expect(sample('vellum_integrity_failures_total{kind="leaf"}')).toBe(0);
    // Conventions: `_total` only on counters, and every counter ends in `_total` (for Vellum's
    // series; prom-client's nodejs_active_*_total gauges keep the names dashboards know).
    const types = [...text.matchAll(/^# TYPE (vellum_\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]);
    expect(types.length).toBeGreaterThan(10);
    for (const [name, type] of types) {
      expect(`${name} ${type}`).toMatch(
        type === "counter" ? /_total counter$/ : /^(?!.*_total ).*/,
      );
    }
  });
});
