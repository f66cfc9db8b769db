/**
 * The process logger (src/platform/logger.ts): info and below to stdout, warn and error to
 * stderr; JSON lines for machines, `HH:MM:SS name: msg key=value` for people; levels filter.
 */
import { describe, expect, it } from "vitest";
import { createLogger, formatPretty } from "../../src/platform/logger.js";

function capture(level: string, pretty: boolean) {
  const out: string[] = [];
  const err: string[] = [];
  const logger = createLogger({
    name: "vellum",
    level,
    pretty,
    out: { write: (s: string) => out.push(s) },
    err: { write: (s: string) => err.push(s) },
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
});
