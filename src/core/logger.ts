/**
 * @module
 * What the server, the log and the witness write operators' log lines through: a leveled logger
 * taking optional structured fields and a message. Only the type lives here (core stays free of
 * I/O); src/platform/logger.ts implements it with pino for the CLI, `silentLogger` is for tests
 * and embedders that want nothing. Messages keep the words operators and tests grep for ("serving
 * on http://", "ENOSPC", "stopped acknowledging", …); fields carry the values (never a token's
 * secret nor an entry's payload).
 */

export type LogFields = Record<string, unknown>;

export interface LogMethod {
  (msg: string): void;
  (fields: LogFields, msg: string): void;
}

export interface Logger {
  readonly debug: LogMethod;
  readonly info: LogMethod;
  readonly warn: LogMethod;
  readonly error: LogMethod;
  /**
   * The server's line per answered request, at info level: the one line a busy server writes
   * thousands of times a second, which a logger may gather into fewer writes (see
   * src/platform/logger.ts). Loggers without it take these lines through `info`.
   */
  readonly request?: LogMethod;
}

const nothing: LogMethod = () => {};

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug: nothing,
  info: nothing,
  warn: nothing,
  error: nothing,
};
