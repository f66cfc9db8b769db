/**
 * @module
 * JSON request bodies, parsed only once they are known to be cheap to parse. JSON.parse runs on
 * the event loop and cannot be interrupted: 16 MiB of nested "[" held every request (/healthz
 * included) for 3 s, 8 million array elements for 0.35 s. So before parsing, one pass over the
 * bytes (strings skipped with a native indexOf) bounds the nesting depth and the number of
 * structural tokens ("{", "[", ",", ":"), and the bytes must be UTF-8 (RFC 8259 §8.1): a lenient
 * decoder would fold different invalid sequences to the same U+FFFD, so two different
 * idempotency keys would collide.
 *
 * Invariant: JSON.parse is called only on text of at most `maxDepth` levels and `maxTokens`
 * tokens, so its time is bounded by the body's size alone. Each refusal is a 400 that names it.
 */
import { HttpProblem } from "./problem.js";

/** Deeper than any body the API takes (a batch is 3 levels); the nesting bound. */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** What each byte is to the scan: 0 nothing, 1 a quote, 2 an opening, 3 a closing, 4 "," or ":". */
const KIND = new Uint8Array(256);
KIND[QUOTE] = 1;
KIND[0x5b] = 2; // [
KIND[0x7b] = 2; // {
KIND[0x5d] = 3; // ]
KIND[0x7d] = 3; // }
KIND[0x2c] = 4; // ,
KIND[0x3a] = 4; // :

export interface JsonShape {
  /** Most nesting levels (default MAX_JSON_DEPTH). */
  readonly maxDepth?: number;
  /** Most "{", "[", "," and ":" outside strings: about what the route's largest body needs. */
  readonly maxTokens: number;
}

/**
 * Refuses (400 BAD_REQUEST) a body nested deeper than `maxDepth` or with more than `maxTokens`
 * structural tokens. Does not validate JSON: a malformed body is left to JSON.parse, whose time
 * is then bounded. One pass: a string without a backslash is skipped with one native indexOf
 * (the base64 payloads of a batch); a string with escapes is walked byte by byte, so no body
 * costs more than one look at each byte (tens of ms for 16 MiB).
 */
export function checkJsonShape(bytes: Uint8Array, shape: JsonShape): void {
  const maxDepth = shape.maxDepth ?? MAX_JSON_DEPTH;
  const n = bytes.length;
  let depth = 0;
  let tokens = 0;
  // The first backslash at or after the scan (n if none): found once, not once per string.
  let nextBackslash = -1;
  for (let i = 0; i < n; i++) {
    const kind = KIND[bytes[i]!]!;
    if (kind === 0) continue;
    if (kind === 1) {
      let end = bytes.indexOf(QUOTE, i + 1);
      if (end < 0) return; // unterminated: JSON.parse refuses it, in linear time
      if (nextBackslash < i) {
        nextBackslash = bytes.indexOf(BACKSLASH, i + 1);
        if (nextBackslash < 0) nextBackslash = n;
      }
      if (nextBackslash < end) {
        // Escapes: walk the string, skipping the byte after each backslash.
        end = i + 1;
        while (end < n && bytes[end] !== QUOTE) end += bytes[end] === BACKSLASH ? 2 : 1;
        if (end >= n) return;
      }
      i = end;
      continue;
    }
    if (kind === 3) {
      depth--;
      continue;
    }
    if (kind === 2 && ++depth > maxDepth) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `the JSON body is nested more than ${maxDepth} levels deep`,
      );
    }
    if (++tokens > shape.maxTokens) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `the JSON body has more than ${shape.maxTokens} values and members; this request needs far fewer`,
      );
    }
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The body as JSON: shape checked, strict UTF-8, then parsed; anything unparsable is 400 `hint`. */
export function parseJsonBody(bytes: Uint8Array, shape: JsonShape, hint: string): unknown {
  checkJsonShape(bytes, shape);
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw new HttpProblem("BAD_REQUEST", "the body is not valid UTF-8 (JSON must be UTF-8)");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpProblem("BAD_REQUEST", hint);
  }
}

/** True if `text` holds a lone UTF-16 surrogate (from a JSON "\udXXX" escape), which no UTF-8 can encode. */
export function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}
