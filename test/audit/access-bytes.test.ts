/**
 * A recorded read's event is written as canonical bytes directly (accessEventBytes,
 * src/audit/access.ts): for every record it must be exactly RFC 8785 of the event object
 * (canonicalBytes(accessEvent(r))), or refused the same way.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AccessRecord, accessEvent, accessEventBytes } from "../../src/audit/access.js";
import { canonicalBytes } from "../../src/audit/canonical.js";

const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.constantFrom(
    "",
    '"',
    "\\",
    "\u0000\u001f\u007f",
    "é",
    "😀",
    "\ud800",
    "a\udc00b",
    "</script>",
  ),
);

const record: fc.Arbitrary<AccessRecord> = fc.record(
  {
    token: fc.option(fc.record({ id: text, name: text }), { nil: undefined }),
    client: fc.option(text, { nil: undefined }),
    method: text,
    route: text,
    query: text,
    entries: fc.array(fc.nat({ max: 2 ** 53 - 1 }), { maxLength: 5 }),
    of: fc.constantFrom("entry" as const, "access" as const),
    tenants: fc.array(text, { maxLength: 3 }),
    requestId: text,
    time: fc.nat({ max: 2 ** 53 - 1 }),
  },
  { requiredKeys: ["token", "client", "method", "route", "entries", "requestId", "time"] },
);

const outcome = (f: () => Uint8Array) => {
  try {
    return { bytes: Buffer.from(f()).toString("latin1") };
  } catch (e) {
    return { error: (e as { code?: string }).code };
  }
};

describe("accessEventBytes", () => {
  it("is RFC 8785 of the access event, for any record", () => {
    fc.assert(
      fc.property(record, (r) => {
        expect(outcome(() => accessEventBytes(r))).toEqual(
          outcome(() => canonicalBytes(accessEvent(r))),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it("for a typical read", () => {
    const r: AccessRecord = {
      token: { id: "t1", name: "auditor" },
      client: "127.0.0.1",
      method: "GET",
      route: "/v1/entries/:index",
      entries: [7],
      requestId: "0b5e…",
      time: 1_764_748_800_000,
    };
    expect(new TextDecoder().decode(accessEventBytes(r))).toBe(
      new TextDecoder().decode(canonicalBytes(accessEvent(r))),
    );
  });
});
