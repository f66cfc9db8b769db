/**
 * Event bytes (src/audit/canonical.ts): RFC 8785 known answers from cyberphone/json-
 * canonicalization (test/known-answers/rfc8785/, Apache-2.0), byte for byte; the same event in
 * any property order gives the same bytes; what JCS cannot represent is refused with its path.
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { canonicalBytes, canonicalJson } from "../../src/audit/canonical.js";
import { VECTORS_DIR } from "../vectors.js";

const dir = `${VECTORS_DIR}rfc8785/`;

describe("RFC 8785 canonical JSON", () => {
  const names = readdirSync(`${dir}input`).filter((n) => n.endsWith(".json"));
  it("has the six known-answer files", () => expect(names.length).toBe(6));

  it.each(names)("%s: canonical bytes equal the published output", (name) => {
    const input = JSON.parse(readFileSync(`${dir}input/${name}`, "utf8"));
    const expected = readFileSync(`${dir}output/${name}`);
    // The published outputs have no trailing newline; compare bytes exactly.
    expect(Buffer.from(canonicalBytes(input)).equals(expected)).toBe(true);
  });

  it("gives one byte string for the same event whatever the property order", () => {
    const a = { actor: { user: { uid: "alice" } }, time: 1, api: { operation: "Read" } };
    const b = { api: { operation: "Read" }, time: 1, actor: { user: { uid: "alice" } } };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe(
      '{"actor":{"user":{"uid":"alice"}},"api":{"operation":"Read"},"time":1}',
    );
  });

  it("refuses what JCS cannot represent, naming where", () => {
    expect(() => canonicalJson({ a: [1, Number.NaN] })).toThrowError(
      /\/a\/1: NaN is not a JSON number/,
    );
    expect(() => canonicalJson({ s: "\uD800x" })).toThrowError(
      /\/s: a string with a lone UTF-16 surrogate/,
    );
    expect(() => canonicalJson({ f: () => 1 })).toThrowError(/\/f: a function is not a JSON value/);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrowError(/nested deeper than 32 levels/);
  });
});
