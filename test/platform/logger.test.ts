/**
 * The process logger (src/platform/logger.ts): info and below to stdout, warn and error to
 * stderr; JSON lines for machines, `HH:MM:SS name: msg key=value` for people; levels filter.
 */
import { describe, expect, it } from "vitest";
import { createLogger, formatPretty, type LoggerOptions } from "../../src/platform/logger.js";

function capture(level: string, pretty: boolean, options: Partial<LoggerOptions> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const logger = createLogger({
    name: "vellum",
    level,
    pretty,
    out: { write: (s: string) => out.push(s) },
    err: { write: (s: string) => err.push(s) },
    ...options,
  });
  return { logger, out, err };
}

describe("process logger", () => {
  it("JSON: info to stdout, warn and error to stderr, each line once", () => {
    const { logger, out, err } = capture("info", false);
    logger.debug("hidden");
    logger.info({ size: 3 }, "serving on http://127.0.0.1:1");
    logger.warn("disk full (ENOSPC): stopped acknowledging");
    logger.error({ class: "EIO" }, "storage failed");
    expect(out).toHaveLength(1);
    expect(err).toHaveLength(2);
    expect(JSON.parse(out[0]!)).toMatchObject({
      level: "info",
      name: "vellum",
      size: 3,
      msg: "serving on http://127.0.0.1:1",
    });
    expect(JSON.parse(err[0]!)).toMatchObject({ level: "warn" });
    expect(JSON.parse(err[1]!)).toMatchObject({ level: "error", class: "EIO" });
    for (const line of [...out, ...err]) expect(line.endsWith("}\n")).toBe(true);
  });

  it("debug level shows debug lines", () => {
    const { logger, out } = capture("debug", false);
    logger.debug("shown");
    expect(out).toHaveLength(1);
  });

  it("pretty: the message as today's lines read, fields after it", () => {
    const { logger, out, err } = capture("info", true);
    logger.info({ route: "/v1/entries", status: 201 }, "request");
    logger.error("storage write failed (disk full (ENOSPC))");
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d vellum: request {2}route=\/v1\/entries status=201\n$/);
    expect(err[0]).toMatch(
      /^\d\d:\d\d:\d\d vellum: ERROR storage write failed \(disk full \(ENOSPC\)\)\n$/,
    );
    expect(formatPretty("not json\n")).toBe("not json\n");
  });

  it("gathers request lines into one write, sent when full, after the time limit, or before any other line", async () => {
    const { logger, out, err } = capture("info", false, { requestBatch: { bytes: 400, ms: 30 } });
    const request = logger.request!;
    request({ route: "/v1/entries", status: 201 }, "request");
    request({ route: "/v1/entries", status: 201 }, "request");
    // A line the level filters out sends nothing.
    logger.debug("hidden");
    expect(out).toEqual([]);
    // Another line sends the gathered ones first, in order, each whole.
    logger.info("serving on http://127.0.0.1:1");
    expect(out).toHaveLength(2);
    const lines = out.join("").trimEnd().split("\n");
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual([
      "request",
      "request",
      "serving on http://127.0.0.1:1",
    ]);
    // Full: one write of several lines.
    out.length = 0;
    for (let i = 0; i < 6; i++) request({ route: "/v1/entries", status: 201, i }, "request");
    expect(out).toHaveLength(1);
    expect(out[0]!.length).toBeGreaterThanOrEqual(400);
    // Not full: sent once the time limit passes, and by flush.
    const pending = out.join("").split("\n").length - 1;
    expect(pending).toBeLessThan(6);
    await new Promise((r) => setTimeout(r, 60));
    expect(out.join("").split("\n").length - 1).toBe(6);
    request({ route: "/healthz", status: 200 }, "request");
    logger.warn("disk full (ENOSPC): stopped acknowledging");
    expect(out.at(-1)).toMatch(/"route":"\/healthz"/);
    expect(err).toHaveLength(1);
    request({ route: "/readyz", status: 200 }, "request");
    logger.flush();
    expect(out.at(-1)).toMatch(/"route":"\/readyz"/);
  });

  it("writes request lines at once when not gathering (a given stream, or pretty lines)", () => {
    const { logger, out } = capture("info", false);
    logger.request!({ route: "/v1/entries", status: 201 }, "request");
    expect(out).toHaveLength(1);
    const pretty = capture("info", true);
    pretty.logger.request!({ route: "/v1/entries", status: 201 }, "request");
    expect(pretty.out).toHaveLength(1);
  });
});
