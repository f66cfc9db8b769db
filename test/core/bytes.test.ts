/**
 * utf8Encode encodes short ASCII strings itself (src/core/bytes.ts) and hands the rest to
 * TextEncoder: both ways must give TextEncoder's bytes exactly, for every string.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { utf8Encode } from "../../src/core/bytes.js";

const reference = (s: string) => new TextEncoder().encode(s);

describe("utf8Encode", () => {
  it("gives TextEncoder's bytes for any string, short or long, ASCII or not", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.string({ unit: "binary", maxLength: 80 }),
          fc.string({
            unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
            maxLength: 80,
          }),
        ),
        (s) => {
          expect(utf8Encode(s)).toEqual(reference(s));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("at the edges: empty, 64 and 65 ASCII characters, a non-ASCII last character, lone surrogates", () => {
    for (const s of [
      "",
      "a".repeat(64),
      "a".repeat(65),
      `${"a".repeat(63)}é`,
      `${"a".repeat(63)}\u0080`,
      "\u007f",
      "ab\ud800cd",
      "\udc00",
      "😀",
    ]) {
      const bytes = utf8Encode(s);
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(bytes).toEqual(reference(s));
    }
  });
});
