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
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const COMMA = 0x2c;
const COLON = 0x3a;

export interface JsonShape {
  /** Most nesting levels (default MAX_JSON_DEPTH). */
  readonly maxDepth?: number;
  /** Most "{", "[", "," and ":" outside strings: about what the route's largest body needs. */
  readonly maxTokens: number;
}

/**
 * Refuses (400 BAD_REQUEST) a body nested deeper than `maxDepth` or with more than `maxTokens`
 * structural tokens. Does not validate JSON: a malformed body is left to JSON.parse, whose time
 * is then bounded.
 */
export function checkJsonShape(bytes: Uint8Array, shape: JsonShape): void {
  const maxDepth = shape.maxDepth ?? MAX_JSON_DEPTH;
  let depth = 0;
  let tokens = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === QUOTE) {
      // Jump to the closing quote: the next one not escaped by an odd run of backslashes.
      let end = bytes.indexOf(QUOTE, i + 1);
      while (end > 0 && isEscaped(bytes, end)) end = bytes.indexOf(QUOTE, end + 1);
      if (end < 0) return; // unterminated: JSON.parse refuses it, in linear time
      i = end;
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > maxDepth) {
        throw new HttpProblem(
          "BAD_REQUEST",
          `the JSON body is nested more than ${maxDepth} levels deep`,
        );
      }
      tokens++;
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      depth--;
    } else if (b === COMMA || b === COLON) {
      tokens++;
    } else {
      continue;
    }
    if (tokens > shape.maxTokens) {
      throw new HttpProblem(
        "BAD_REQUEST",
        `the JSON body has more than ${shape.maxTokens} values and members; this request needs far fewer`,
      );
    }
  }
}

function isEscaped(bytes: Uint8Array, quote: number): boolean {
  let run = 0;
  for (let k = quote - 1; k >= 0 && bytes[k] === BACKSLASH; k--) run++;
  return run % 2 === 1;
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
