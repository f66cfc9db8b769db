/**
 * The leaf encoding must be readable by any standard CBOR decoder, canonical (one encoding per
 * entry), and bounded so a leaf always fits a C2SP entry bundle slot.
 */
import { decode as cborDecode } from "cbor-x";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeLeaf,
  decodeLeafFields,
  encodeLeaf,
  encodeLeafFields,
  formatUuid,
  leafFromFields,
  MAX_PAYLOAD_SIZE,
  parseUuid,
  uuidV7Time,
} from "../../src/core/entry.js";
import { encodeEntryBundle, MAX_ENTRY_SIZE } from "../../src/core/tiles.js";
import { codeOf } from "../helpers/errors.js";

const id = Uint8Array.from({ length: 16 }, (_, i) => i + 1);

describe("leaf encoding", () => {
  it("is the deterministic CBOR array [1, id, timestamp, payload]", () => {
    const leaf = encodeLeaf({ id, timestamp: 1_700_000_000_123, payload: Uint8Array.of(9, 8) });
    expect(Buffer.from(leaf).toString("hex")).toBe(
      `840150${Buffer.from(id).toString("hex")}1b0000018bcfe5687b420908`,
    );
    const decoded = cborDecode(leaf) as unknown[];
    expect(decoded[0]).toBe(1);
    expect(new Uint8Array(decoded[1] as Uint8Array)).toEqual(id);
    expect(Number(decoded[2])).toBe(1_700_000_000_123); // cbor-x reads 8-byte ints as bigint
    expect(new Uint8Array(decoded[3] as Uint8Array)).toEqual(Uint8Array.of(9, 8));
  });

  it("round-trips, and a receipt's extra plus the payload rebuilds the leaf", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 600 }),
        (i, timestamp, payload) => {
          const leaf = encodeLeaf({ id: i, timestamp, payload });
          expect(decodeLeaf(leaf)).toEqual({ id: i, timestamp, payload });
          const extra = encodeLeafFields({ id: i, timestamp });
          expect(decodeLeafFields(extra)).toEqual({ id: i, timestamp });
          expect(leafFromFields(extra, payload)).toEqual(leaf);
          expect(cborDecode(extra)).toHaveLength(3);
          // A receipt's extra also carries the leaf hash.
          const leafHash = new Uint8Array(32).fill(timestamp % 256);
          const withHash = encodeLeafFields({ id: i, timestamp, leafHash });
          expect(decodeLeafFields(withHash)).toEqual({ id: i, timestamp, leafHash });
          expect(leafFromFields(withHash, payload)).toEqual(leaf);
        },
      ),
    );
  });

  it("fits an entry bundle at the payload limit and refuses one byte more", () => {
    const big = new Uint8Array(MAX_PAYLOAD_SIZE);
    const leaf = encodeLeaf({ id, timestamp: Number.MAX_SAFE_INTEGER, payload: big });
    expect(leaf.length).toBeLessThanOrEqual(MAX_ENTRY_SIZE);
    expect(() => encodeEntryBundle([leaf])).not.toThrow();
    expect(
      codeOf(() => encodeLeaf({ id, timestamp: 1, payload: new Uint8Array(MAX_PAYLOAD_SIZE + 1) })),
    ).toBe("TOO_LARGE");
  });

  it("refuses non-canonical or foreign encodings", () => {
    const good = encodeLeaf({ id, timestamp: 5, payload: Uint8Array.of(1) });
    const hex = Buffer.from(good).toString("hex");
    const bad = [
      hex.replace(/^8401/, "8402"), // unknown version
      hex.replace(/^84/, "83"), // wrong arity
      hex.replace(/^84/, "9f"), // indefinite array
      `${hex}00`, // trailing byte
      hex.slice(0, -2), // truncated payload
      hex.replace(
        `50${Buffer.from(id).toString("hex")}05`,
        `50${Buffer.from(id).toString("hex")}1805`,
      ), // non-shortest timestamp
      hex.replace(/4101$/, "580101"), // non-shortest payload length
      hex.replace(/^840150/, "84014f"), // 15-byte id
    ];
    for (const h of bad)
      expect(
        codeOf(() => decodeLeaf(Uint8Array.from(Buffer.from(h, "hex")))),
        h,
      ).toBe("MALFORMED");
  });
});

describe("UUID text form", () => {
  it("formats, parses and reads the UUIDv7 time", () => {
    const v7 = Uint8Array.from(Buffer.from("018bcfe5687b7abc8def0123456789ab", "hex"));
    expect(formatUuid(v7)).toBe("018bcfe5-687b-7abc-8def-0123456789ab");
    expect(parseUuid("018bcfe5-687b-7abc-8def-0123456789ab")).toEqual(v7);
    expect(uuidV7Time(v7)).toBe(1_700_000_000_123);
    for (const t of [
      "018BCFE5-687B-7ABC-8DEF-0123456789AB",
      "018bcfe5687b7abc8def0123456789ab",
      "x",
      "",
    ]) {
      expect(codeOf(() => parseUuid(t))).toBe("MALFORMED");
    }
  });
});
