/**
 * @module
 * The process's logger (pino), built once by the CLI and passed to the server, the log and the
 * witness as a `Logger` (src/core/logger.ts): they never import pino. Lines at info and below go
 * to stdout, warn and error to stderr (as the console.log/console.error lines they replace did,
 * so a supervisor's split of the two streams still means the same). When stdout is a terminal
 * each line is formatted for people (`12:00:01 vellum: <msg> key=value …`); otherwise it is one
 * JSON object per line (`level`, `time`, `name`, `msg`, fields) for a log pipeline. stdout is
 * written asynchronously (a request's line does not wait for the pipe), request lines gathered
 * into writes of up to 8 KiB sent within 100 ms and before any other line, and flushed when the
 * process exits; stderr synchronously.
 */
import pino from "pino";
import type { Logger, LogMethod } from "../core/logger.js";

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ProcessLogger extends Logger {
  /** Writes out what is buffered (call before process.exit). */
  flush(): void;
}

export interface LoggerOptions {
  /** "vellum" or "vellum witness": the prefix of human-readable lines, `name` in JSON. */
  readonly name: string;
  readonly level?: string | undefined;
  /** Human-readable lines (default: when stdout is a terminal). */
  readonly pretty?: boolean;
  /** Where lines go (default process.stdout / process.stderr); for tests. */
  readonly out?: { write(s: string): unknown };
  readonly err?: { write(s: string): unknown };
  /**
   * Gather request lines (Logger.request) into one write of up to `bytes`, sent at the latest
   * `ms` after the first line, and before any other line (default: when writing JSON lines to
   * the process's stdout, 8 KiB and 100 ms; off when `out` is given).
   */
  readonly requestBatch?: { readonly bytes: number; readonly ms: number } | false;
}

/**
 * Request lines gathered into one write: a busy server writes a line per request, and a write
 * call each was among its larger costs per request after HTTP itself. Gathered, the line's share
 * of the event loop per single-entry POST about halved (bench:http --profile, alternating
 * builds, against the HTTP parsing of the same run: 0.71–0.85 of it before, 0.34–0.58 after).
 */
class LineBatch {
  readonly #out: { write(s: string): unknown };
  readonly #bytes: number;
  readonly #ms: number;
  #text = "";
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(out: { write(s: string): unknown }, bytes: number, ms: number) {
    this.#out = out;
    this.#bytes = bytes;
    this.#ms = ms;
  }

  write(line: string): void {
    this.#text += line;
    if (this.#text.length >= this.#bytes) this.send();
    else this.#timer ??= setTimeout(() => this.send(), this.#ms).unref();
  }

  /** Writes what has gathered, if anything. */
  send(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#text === "") return;
    const text = this.#text;
    this.#text = "";
    this.#out.write(text);
  }
}

/** Checks a --log-level / VELLUM_LOG_LEVEL value. */
export function parseLogLevel(value: string | undefined): LogLevel {
  const level = (value ?? "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${value}"`);
  }
  return level as LogLevel;
}

const LEVEL_VALUE: Record<LogLevel, number> = {
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  silent: 100,
};

const FIXED = new Set(["level", "time", "pid", "hostname", "name", "msg"]);

/** One JSON line as a person reads it: time, name, message, then the fields as key=value. */
export function formatPretty(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof o.time === "number" ? new Date(o.time).toISOString().slice(11, 19) : "";
  const level =
    o.level === "warn" || o.level === "error" ? `${String(o.level).toUpperCase()} ` : "";
  const fields = Object.entries(o)
    .filter(([k]) => !FIXED.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${time} ${o.name}: ${level}${o.msg}${fields === "" ? "" : `  ${fields}`}\n`;
}

export function createLogger(options: LoggerOptions): ProcessLogger {
  const level = parseLogLevel(options.level);
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  // stdout (a line per request) is written asynchronously; stderr (failures, rare) at once, so a
  // process that exits right after an error has said it.
  const out = options.out ?? (pretty ? process.stdout : pino.destination({ fd: 1, sync: false }));
  const err = options.err ?? (pretty ? process.stderr : pino.destination({ fd: 2, sync: true }));
  const wrap = (s: { write(s: string): unknown }) =>
    pretty ? { write: (line: string) => s.write(formatPretty(line)) } : s;
  // Two loggers, one per stream, rather than pino.multistream: a request's line then costs one
  // serialization and one write call, with no per-line routing (measured: multistream and ISO
  // timestamps were a third of the line's cost). `time` is milliseconds since the epoch.
  const settings = (min: string) => ({
    name: options.name,
    level: LEVEL_VALUE[level] >= LEVEL_VALUE[min as LogLevel] ? level : min,
    base: { pid: process.pid },
    formatters: { level: (label: string) => ({ level: label }) },
  });
  const toOut = pino(settings("debug"), wrap(out));
  const toErr = pino(settings("warn"), wrap(err));
  const batching =
    options.requestBatch ?? (options.out === undefined && !pretty && { bytes: 8192, ms: 100 });
  const batch = batching ? new LineBatch(out, batching.bytes, batching.ms) : undefined;
  const toRequests = batch === undefined ? toOut : pino(settings("debug"), batch);
  /**
   * Any other line first sends the request lines gathered before it, so order is kept (a line
   * its level filters out sends nothing).
   */
  const bound = (l: typeof toOut, level: "debug" | "info" | "warn" | "error"): LogMethod => {
    const method = l[level].bind(l) as (...args: unknown[]) => void;
    if (batch === undefined) return method;
    return (...args: unknown[]) => {
      if (l.isLevelEnabled(level)) batch.send();
      method(...args);
    };
  };
  const flush = () => {
    batch?.send();
    for (const s of [out, err]) {
      const f = (s as { flushSync?: () => void }).flushSync;
      try {
        f?.call(s);
      } catch {
        // Nothing buffered, or the stream is gone: nothing more can be written anyway.
      }
    }
  };
  // Whatever way the process ends (process.exit after an error included), buffered lines go out.
  if (options.out === undefined) process.once("exit", flush);
  return {
    debug: bound(toOut, "debug"),
    info: bound(toOut, "info"),
    request: toRequests.info.bind(toRequests),
    warn: bound(toErr, "warn"),
    error: bound(toErr, "error"),
    flush,
  };
}
