/** The one retry schedule (src/core/backoff.ts): doubling to a cap, and Retry-After honoured. */
import { describe, expect, it } from "vitest";
import { backoffDelay, nextBackoff, retryAfterMs } from "../../src/core/backoff.js";

describe("backoff", () => {
  it("doubles from the first pause and stops at the cap", () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, 250, 3000))).toEqual([
      250, 500, 1000, 2000, 3000, 3000,
    ]);
    expect(nextBackoff(100, 1000)).toBe(200);
    expect(nextBackoff(800, 1000)).toBe(1000);
  });

  it("honours a positive Retry-After in seconds, capped, and ignores anything else", () => {
    expect(retryAfterMs("2", 10_000)).toBe(2000);
    expect(retryAfterMs("0.5", 10_000)).toBe(500);
    expect(retryAfterMs("120", 10_000)).toBe(10_000);
    for (const h of [null, undefined, "", "0", "-1", "soon", "Wed, 21 Oct 2026 07:28:00 GMT"]) {
      expect(retryAfterMs(h, 10_000)).toBeUndefined();
    }
  });
});
