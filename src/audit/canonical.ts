/**
 * @module
 * The bytes of an event: its RFC 8785 JSON Canonicalization Scheme (JCS) form, so the same event
 * always has the same bytes — dedup by payload works across clients, and a receipt proves the
 * exact event. Serialisation is `canonicalize` (by Samuel Erdtman, an author of RFC 8785), after
 * a walk that refuses what JCS cannot represent or that would not survive a round trip
 * (RFC 8785 §3.2.2, I-JSON, RFC 7493): non-finite numbers, lone UTF-16 surrogates, values that
 * are not JSON (undefined, functions, bigint), and nesting deeper than the API allows.
 */
import * as jcs from "canonicalize";
import { utf8Encode } from "../core/bytes.js";
import { VellumError } from "../core/errors.js";

// A CommonJS module: its function is the namespace's default under Node's ESM and bundlers.
const canonicalize = ((jcs as { default?: unknown }).default ?? jcs) as (
  value: unknown,
) => string | undefined;

/** Deepest nesting an event may have (the HTTP API's JSON depth limit is the same). */
export const MAX_EVENT_DEPTH = 32;

/** A UTF-16 surrogate without its pair: not I-JSON, so not in an event (RFC 8785 §3.2.2.2). */
export const LONE_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws MALFORMED naming the JSON pointer of the first value JCS cannot represent. */
function checkValue(value: unknown, path: string, depth: number): void {
  if (depth > MAX_EVENT_DEPTH) {
    throw new VellumError(
      "MALFORMED",
      `${path || "/"}: nested deeper than ${MAX_EVENT_DEPTH} levels`,
    );
  }
  switch (typeof value) {
    case "string":
      if (LONE_SURROGATE.test(value)) {
        throw new VellumError(
          "MALFORMED",
          `${path || "/"}: a string with a lone UTF-16 surrogate is not I-JSON (RFC 8785 §3.2.2.2)`,
        );
      }
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new VellumError("MALFORMED", `${path || "/"}: ${value} is not a JSON number`);
      }
      return;
    case "boolean":
      return;
    case "object":
      if (value === null) return;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) checkValue(value[i], `${path}/${i}`, depth + 1);
        return;
      }
      for (const [k, v] of Object.entries(value)) {
        if (LONE_SURROGATE.test(k)) {
          throw new VellumError(
            "MALFORMED",
            `${path}: a property name with a lone UTF-16 surrogate is not I-JSON`,
          );
        }
        checkValue(v, `${path}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`, depth + 1);
      }
      return;
    default:
      throw new VellumError("MALFORMED", `${path || "/"}: a ${typeof value} is not a JSON value`);
  }
}

/** The RFC 8785 canonical text of a JSON value (as parsed by JSON.parse). */
export function canonicalJson(value: unknown): string {
  checkValue(value, "", 0);
  const text = canonicalize(value);
  if (text === undefined) throw new VellumError("MALFORMED", "the value has no JSON form");
  return text;
}

/** The canonical bytes (UTF-8) of a JSON value: what the log stores for an event. */
export function canonicalBytes(value: unknown): Uint8Array {
  return utf8Encode(canonicalJson(value));
}
