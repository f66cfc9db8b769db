/**
 * @module
 * The codes a Vellum server sends in the `code` member of its problem+json answers (RFC 9457):
 * every VellumError code, plus the few only the HTTP layer produces. One list, shared: the
 * server maps each to an HTTP status (src/server/problem.ts, a table the compiler checks is
 * complete), and the client turns each back into a VellumError (src/client/http.ts), so a code
 * the server can send is never unknown to the client (test/client/problem-codes.test.ts sends
 * every one through the server's own error mapping to the client).
 */
import { ERROR_CODES, type ErrorCode } from "./errors.js";

/** Codes that only the HTTP layer produces (no VellumError carries them). */
export const HTTP_ERROR_CODES = [
  "ROUTE_NOT_FOUND",
  "METHOD_NOT_ALLOWED",
  "PAYLOAD_TOO_LARGE",
  "BAD_REQUEST",
  "UNSUPPORTED_MEDIA_TYPE",
] as const;
export type HttpErrorCode = (typeof HTTP_ERROR_CODES)[number];

export type ProblemCode = ErrorCode | HttpErrorCode;

/** Every code a server may send. */
export const PROBLEM_CODES: readonly ProblemCode[] = Object.freeze([
  ...ERROR_CODES,
  ...HTTP_ERROR_CODES,
]);

/**
 * The VellumError code a client raises for an HTTP-layer code: the nearest meaning (a route or
 * method the server does not have is a thing that does not exist there; a body the server
 * refuses to read is malformed or too large).
 */
const CLIENT_CODE: Record<HttpErrorCode, ErrorCode> = {
  ROUTE_NOT_FOUND: "NOT_FOUND",
  METHOD_NOT_ALLOWED: "NOT_FOUND",
  PAYLOAD_TOO_LARGE: "TOO_LARGE",
  BAD_REQUEST: "MALFORMED",
  UNSUPPORTED_MEDIA_TYPE: "MALFORMED",
};

/** For an answer without a known code (a proxy's page, another server): the status's meaning. */
const BY_STATUS: Record<number, ErrorCode> = {
  400: "MALFORMED",
  401: "UNAUTHENTICATED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "NOT_FOUND",
  409: "CONFLICT",
  413: "TOO_LARGE",
  414: "TOO_LARGE",
  415: "MALFORMED",
  422: "MALFORMED",
  429: "OVERLOADED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
};

export function isProblemCode(code: unknown): code is ProblemCode {
  return typeof code === "string" && (PROBLEM_CODES as readonly string[]).includes(code);
}

/**
 * The VellumError code for an HTTP error answer: its problem code when it has a known one, else
 * what its status means; NETWORK only for what is not the protocol at all (e.g. a 502 from a
 * proxy that could not reach the server).
 */
export function clientErrorCode(code: unknown, status: number): ErrorCode {
  if (isProblemCode(code)) {
    return (HTTP_ERROR_CODES as readonly string[]).includes(code)
      ? CLIENT_CODE[code as HttpErrorCode]
      : (code as ErrorCode);
  }
  return BY_STATUS[status] ?? "NETWORK";
}
