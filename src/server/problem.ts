/**
 * @module
 * The one place where errors become HTTP answers. Every error is `application/problem+json`
 * (RFC 9457) with a stable `code` (the VellumError code, or an HTTP-layer code below) and a
 * `detail` that says what to fix. Messages of INTERNAL errors are not shown to clients.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { VellumError } from "../core/errors.js";
import type { HttpErrorCode, ProblemCode } from "../core/problem-codes.js";

// The list of codes lives in the core, shared with the client (src/core/problem-codes.ts).
export type { HttpErrorCode, ProblemCode };

const STATUS: Record<ProblemCode, ContentfulStatusCode> = {
  MALFORMED: 400,
  INVALID_EVENT: 400,
  OUT_OF_RANGE: 400,
  TOO_LARGE: 413,
  PROOF_LENGTH: 400,
  PROOF_MISMATCH: 400,
  BAD_SIGNATURE: 400,
  NO_KNOWN_SIGNATURE: 400,
  BAD_KEY: 400,
  QUORUM_NOT_MET: 400,
  INCONSISTENT: 409,
  NOT_FOUND: 404,
  CONFLICT: 409,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
  STORAGE_FAILURE: 503,
  LOCKED: 503,
  STATE_MISMATCH: 500,
  INTEGRITY_FAILURE: 500,
  INTERNAL: 500,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NETWORK: 502,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  BAD_REQUEST: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
};

/** Every code this server can answer with (the keys of its status table). */
export const SERVER_PROBLEM_CODES = Object.keys(STATUS) as ProblemCode[];

export function statusOf(code: ProblemCode): ContentfulStatusCode {
  return STATUS[code] ?? 500;
}

export interface Problem {
  type: "about:blank";
  title: string;
  status: number;
  code: ProblemCode;
  detail: string;
  /** The request's id (X-Request-Id): the line to look for in the server's log. */
  instance?: string;
}

/** An error raised by the HTTP layer itself, with its own code. */
export class HttpProblem extends Error {
  constructor(
    readonly code: HttpErrorCode | "UNAUTHENTICATED" | "FORBIDDEN",
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function problemOf(
  error: unknown,
  requestId?: string,
): { problem: Problem; headers: Record<string, string> } {
  let code: ProblemCode = "INTERNAL";
  let detail = "internal error; see the server log";
  const headers: Record<string, string> = {};
  if (error instanceof VellumError) {
    code = error.code;
    if (code !== "INTERNAL") detail = error.message;
    if (error.retryAfterMs !== undefined) {
      headers["Retry-After"] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
    } else if (code === "UNAVAILABLE" || code === "STORAGE_FAILURE") {
      headers["Retry-After"] = "1";
    }
  } else if (error instanceof HttpProblem) {
    code = error.code;
    detail = error.message;
    Object.assign(headers, error.headers);
  }
  const status = statusOf(code);
  return {
    problem: {
      type: "about:blank",
      title: TITLES[status] ?? "Error",
      status,
      code,
      detail,
      ...(requestId === undefined ? {} : { instance: requestId }),
    },
    headers,
  };
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
