/**
 * The leaf encoding must be readable by any standard CBOR decoder, canonical (one encoding per
 * entry), and bounded so a leaf always fits a C2SP entry bundle slot. Both versions: 1 (no
 * submitter, old data) and 2 (with the submitter), with hand-checked known-answer bytes.
 */
import { createHash } from "node:crypto";
import { decode as cborDecode } from "cbor-x";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeLeaf,
  decodeLeafFields,
  encodeLeaf,
  encodeLeafFields,
  encodeLeafInto,
  formatUuid,
  leafFromFields,
  leafPayload,
  leafSize,
  MAX_PAYLOAD_SIZE,
  MAX_SUBMITTER_SIZE,
  parseUuid,
  uuidV7Time,
} from "../../src/core/entry.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { encodeEntryBundle, MAX_ENTRY_SIZE } from "../../src/core/tiles.js";
import { codeOf } from "../helpers/errors.js";

/** RFC 6962 leaf hash with node:crypto, independent of the code under test. */
const hashLeafOf = (leaf: Uint8Array) =>
  new Uint8Array(createHash("sha256").update(Uint8Array.of(0)).update(leaf).digest());

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

  it("fits an entry bundle at the payload limit with the longest submitter, not one byte more", () => {
    expect(MAX_PAYLOAD_SIZE).toBe(65_438); // documented in spec/formats.md and spec/api.md
    const submitter = "~".repeat(MAX_SUBMITTER_SIZE);
    const timestamp = Number.MAX_SAFE_INTEGER; // a 9-byte head, the longest
    const big = new Uint8Array(MAX_PAYLOAD_SIZE);
    const leaf = encodeLeaf({ id, timestamp, submitter, payload: big });
    expect(leaf.length).toBe(MAX_ENTRY_SIZE);
    expect(() => encodeEntryBundle([leaf])).not.toThrow();
    const over = new Uint8Array(MAX_PAYLOAD_SIZE + 1);
    expect(codeOf(() => encodeLeaf({ id, timestamp, submitter, payload: over }))).toBe("TOO_LARGE");
  });

  it("still rebuilds version-1 leaves written under the old 65,504-byte limit", () => {
    // Before submitters, a payload could be 65,504 bytes: its leaf filled a bundle slot exactly.
    const payload = new Uint8Array(65_504).fill(7);
    const timestamp = Number.MAX_SAFE_INTEGER;
    const leaf = encodeLeaf({ id, timestamp, payload });
    expect(leaf.length).toBe(MAX_ENTRY_SIZE);
    const leafHash = new Uint8Array(32).fill(1);
    expect(leafFromFields(encodeLeafFields({ id, timestamp, leafHash }), payload)).toEqual(leaf);
    expect(codeOf(() => encodeLeaf({ id, timestamp, payload: new Uint8Array(65_505) }))).toBe(
      "TOO_LARGE",
    );
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

describe("a leaf's payload as a view (leafPayload)", () => {
  const outcome = (f: () => Uint8Array) => {
    try {
      return { payload: Buffer.from(f()).toString("hex") };
    } catch (e) {
      return { error: `${(e as { code?: string }).code} ${(e as Error).message}` };
    }
  };

  it("reads what decodeLeaf reads and refuses what it refuses, with the same message", () => {
    const leaf = fc
      .record({
        id: fc.uint8Array({ minLength: 16, maxLength: 16 }),
        timestamp: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.maxSafeNat()),
        submitter: fc.option(fc.stringMatching(/^[!-~]{1,40}$/), { nil: undefined }),
        payload: fc.uint8Array({ maxLength: 300 }),
      })
      .map((l) => encodeLeaf(l.submitter === undefined ? { ...l, submitter: undefined } : l));
    // The leaf, a byte changed, cut short, or grown by a byte.
    const input = fc
      .tuple(leaf, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat(3))
      .map(([bytes, at, b, how]) => {
        const i = at % bytes.length;
        if (how === 0) return bytes;
        if (how === 1) return Uint8Array.from(bytes, (x, k) => (k === i ? b : x));
        if (how === 2) return bytes.subarray(0, i);
        return Uint8Array.of(...bytes, b);
      });
    fc.assert(
      fc.property(input, (bytes) => {
        const got = outcome(() => leafPayload(bytes));
        expect(got).toEqual(outcome(() => decodeLeaf(bytes).payload));
      }),
      { numRuns: 3000 },
    );
  });

  it("is a view of the leaf's own bytes", () => {
    const leaf = encodeLeaf({ id: new Uint8Array(16), timestamp: 1, payload: Uint8Array.of(7, 8) });
    const payload = leafPayload(leaf);
    expect([...payload]).toEqual([7, 8]);
    expect(payload.buffer).toBe(leaf.buffer);
  });
});

describe("leaf version 2: the submitter", () => {
  const idHex = Buffer.from(id).toString("hex");
  const submitter = "0123456789abcdef"; // a token id's shape: 16 lowercase hex characters
  const ts = "1b0000018bcfe5687b"; // 1,700,000,000,123 ms as a CBOR uint with an 8-byte argument

  it("is the deterministic CBOR array [2, id, timestamp, submitter, payload] (known answer)", () => {
    const leaf = encodeLeaf({
      id,
      timestamp: 1_700_000_000_123,
      submitter,
      payload: Uint8Array.of(9, 8),
    });
    // 85: array(5); 02: version 2; 50: bstr(16) id; 1b…: timestamp; 70: tstr(16) submitter
    // (ASCII "0123456789abcdef" = 30…39 61…66); 42: bstr(2) payload.
    expect(Buffer.from(leaf).toString("hex")).toBe(
      [
        "85",
        "02",
        "50",
        "0102030405060708090a0b0c0d0e0f10",
        "1b0000018bcfe5687b",
        "70",
        "30313233343536373839616263646566",
        "42",
        "0908",
      ].join(""),
    );
    const decoded = cborDecode(leaf) as unknown[];
    expect(decoded).toHaveLength(5);
    expect(decoded[0]).toBe(2);
    expect(decoded[3]).toBe(submitter);
    expect(new Uint8Array(decoded[4] as Uint8Array)).toEqual(Uint8Array.of(9, 8));
    expect(decodeLeaf(leaf)).toEqual({
      id,
      timestamp: 1_700_000_000_123,
      submitter,
      payload: Uint8Array.of(9, 8),
    });
    // Its leaf hash, as RFC 6962 defines it, independently of the code under test.
    expect(hashLeaf(leaf)).toEqual(hashLeafOf(leaf));
  });

  it("a receipt's extra is [2, id, timestamp, submitter, leafHash] (known answer)", () => {
    const leafHash = new Uint8Array(32).fill(0xab);
    const extra = encodeLeafFields({ id, timestamp: 1_700_000_000_123, submitter, leafHash });
    // 58 20: bstr(32), the leaf hash.
    expect(Buffer.from(extra).toString("hex")).toBe(
      [
        "85",
        "02",
        "50",
        "0102030405060708090a0b0c0d0e0f10",
        "1b0000018bcfe5687b",
        "70",
        "30313233343536373839616263646566",
        "5820",
        "abababababababababababababababababababababababababababababababab",
      ].join(""),
    );
    expect(decodeLeafFields(extra)).toEqual({
      id,
      timestamp: 1_700_000_000_123,
      submitter,
      leafHash,
    });
    // Without the leaf hash: [2, id, timestamp, submitter].
    const bare = encodeLeafFields({ id, timestamp: 1_700_000_000_123, submitter });
    expect(Buffer.from(bare).toString("hex")).toBe(
      `840250${idHex}${ts}70${"30313233343536373839616263646566"}`,
    );
    expect(decodeLeafFields(bare)).toEqual({ id, timestamp: 1_700_000_000_123, submitter });
  });

  it("a submitter of 24 or more characters takes a two-byte head (known answer)", () => {
    const long = "x".repeat(MAX_SUBMITTER_SIZE);
    const leaf = encodeLeaf({ id, timestamp: 5, submitter: long, payload: Uint8Array.of(1) });
    // 78 40: tstr with a 1-byte length, 64.
    expect(Buffer.from(leaf).toString("hex")).toBe(`850250${idHex}057840${"78".repeat(64)}4101`);
  });

  it("round-trips; extra plus payload rebuilds the leaf; another submitter another leaf", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.stringMatching(/^[\x21-\x7e]{1,64}$/),
        fc.uint8Array({ maxLength: 600 }),
        (i, timestamp, who, payload) => {
          const leaf = encodeLeaf({ id: i, timestamp, submitter: who, payload });
          expect(decodeLeaf(leaf)).toEqual({ id: i, timestamp, submitter: who, payload });
          const leafHash = hashLeafOf(leaf);
          const extra = encodeLeafFields({ id: i, timestamp, submitter: who, leafHash });
          expect(decodeLeafFields(extra)).toEqual({ id: i, timestamp, submitter: who, leafHash });
          expect(leafFromFields(extra, payload)).toEqual(leaf);
          // The submitter is committed to: changing it changes the leaf hash.
          const other = who === "a" ? "b" : "a";
          const forged = encodeLeafFields({ id: i, timestamp, submitter: other, leafHash });
          expect(hashLeafOf(leafFromFields(forged, payload))).not.toEqual(leafHash);
          // And dropping it (a version-1 extra) too.
          const v1 = encodeLeafFields({ id: i, timestamp, leafHash });
          expect(hashLeafOf(leafFromFields(v1, payload))).not.toEqual(leafHash);
        },
      ),
    );
  });

  it("refuses submitters that are empty, too long or not printable ASCII", () => {
    for (const bad of ["", "x".repeat(MAX_SUBMITTER_SIZE + 1), "a b", "é", "a\nb"]) {
      expect(
        codeOf(() => encodeLeaf({ id, timestamp: 1, submitter: bad, payload: Uint8Array.of(1) })),
        JSON.stringify(bad),
      ).toBe("MALFORMED");
    }
  });

  it("refuses non-canonical or foreign version-2 encodings", () => {
    const good = encodeLeaf({ id, timestamp: 5, submitter: "ab", payload: Uint8Array.of(1) });
    const hex = Buffer.from(good).toString("hex");
    expect(hex).toBe(`850250${idHex}056261624101`);
    const bad = [
      hex.replace(/^8502/, "8501"), // version 1 with five items
      hex.replace(/^8502/, "8402"), // version 2 with four items: no payload
      hex.replace(/^8502/, "8503"), // unknown version
      hex.replace("05626162", "0578026162"), // non-shortest submitter head
      hex.replace("05626162", "05424142"), // submitter as a byte string
      hex.replace("05626162", "0560"), // empty submitter
      hex.replace("05626162", "05626120"), // a space in the submitter
      hex.replace("05626162", "056261ff"), // not ASCII (and not UTF-8)
      hex.replace("05626162", `0578${(65).toString(16)}${"61".repeat(65)}`), // 65 bytes
      `${hex}00`, // trailing byte
    ];
    for (const h of bad) {
      expect(h).not.toBe(hex);
      expect(
        codeOf(() => decodeLeaf(Uint8Array.from(Buffer.from(h, "hex")))),
        h,
      ).toBe("MALFORMED");
    }
    // An extra of either version: 3/4 items for version 1, 4/5 for version 2, nothing else.
    const extra = Buffer.from(
      encodeLeafFields({ id, timestamp: 5, submitter: "ab", leafHash: new Uint8Array(32) }),
    ).toString("hex");
    for (const h of [extra.replace(/^8502/, "8302"), extra.replace(/^8502/, "8601"), `${extra}00`])
      expect(
        codeOf(() => decodeLeafFields(Uint8Array.from(Buffer.from(h, "hex")))),
        h,
      ).toBe("MALFORMED");
  });
});

describe("leaves packed into one buffer (the sequencer's form)", () => {
  const leaves = [
    { id, timestamp: 0, payload: new Uint8Array(0) },
    { id, timestamp: 1_700_000_000_123, payload: Uint8Array.of(1, 2, 3) },
    { id, timestamp: 2 ** 40, submitter: "0123456789abcdef", payload: new Uint8Array(300).fill(7) },
    { id, timestamp: 23, submitter: "x", payload: new Uint8Array(45_000) },
  ];

  it("sizes and encodes each leaf to exactly encodeLeaf's bytes, back to back", () => {
    const sizes = leaves.map((l) => leafSize(l));
    expect(sizes).toEqual(leaves.map((l) => encodeLeaf(l).length));
    const out = new Uint8Array(sizes.reduce((a, b) => a + b, 0) + 2).fill(0xee);
    let at = 1;
    for (const l of leaves) {
      const end = encodeLeafInto(l, out, at);
      expect(Buffer.from(out.subarray(at, end))).toEqual(Buffer.from(encodeLeaf(l)));
      at = end;
    }
    // Nothing written outside the room given.
    expect(out[0]).toBe(0xee);
    expect(out[at]).toBe(0xee);
  });

  it("refuses what encodeLeaf refuses", () => {
    // The longest submitter and a 9-byte timestamp: one byte more of payload does not fit a slot.
    const big = {
      id,
      timestamp: 2 ** 40,
      submitter: "s".repeat(64),
      payload: new Uint8Array(MAX_PAYLOAD_SIZE + 1),
    };
    expect(codeOf(() => leafSize(big))).toBe("TOO_LARGE");
    expect(codeOf(() => encodeLeaf(big))).toBe("TOO_LARGE");
    expect(codeOf(() => leafSize({ timestamp: -1, payload: new Uint8Array(1) }))).toBe(
      "OUT_OF_RANGE",
    );
    expect(
      codeOf(() => leafSize({ timestamp: 1, submitter: "a b", payload: new Uint8Array(1) })),
    ).toBe("MALFORMED");
    const out = new Uint8Array(64);
    expect(
      codeOf(() =>
        encodeLeafInto({ id: id.subarray(1), timestamp: 1, payload: new Uint8Array(1) }, out, 0),
      ),
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
