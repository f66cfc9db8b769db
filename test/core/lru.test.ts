/**
 * The two-generation cache: bounded by total weight (entry count, or bytes with a `weigh`),
 * recently used entries survive a rotation, and values heavier than half the bound are not kept.
 */
import { describe, expect, it } from "vitest";
import { LruCache } from "../../src/core/lru.js";

const bytes = (n: number) => new Uint8Array(n);

describe("LruCache", () => {
  it("by count: holds at most maxEntries, keeping the recently used", () => {
    const cache = new LruCache<number, string>(4);
    for (let i = 0; i < 4; i++) cache.set(i, `v${i}`);
    expect(cache.size).toBe(4);
    expect(cache.get(0)).toBe("v0"); // old generation -> young: survives the next rotation
    cache.set(4, "v4");
    cache.set(5, "v5");
    expect(cache.size).toBeLessThanOrEqual(4);
    expect(cache.get(0)).toBe("v0");
    expect(cache.get(1)).toBeUndefined();
  });

  it("a bound of one holds one entry (the client's smallest tile cache)", () => {
    const c = new LruCache<string, number>(1);
    c.set("a", 1);
    expect(c.get("a")).toBe(1);
    c.set("b", 2);
    expect(c.size).toBe(1);
    expect(c.get("a")).toBeUndefined();
    expect(c.get("b")).toBe(2);
  });

  it("by bytes: the total byteLength held never exceeds the bound, whatever the sizes", () => {
    const max = 1000;
    const cache = new LruCache<number, Uint8Array>(max, (b) => b.byteLength);
    const sizes = [10, 400, 3, 250, 499, 1, 120, 300, 77, 500, 2, 450, 60];
    for (let round = 0; round < 20; round++) {
      for (const [i, n] of sizes.entries()) {
        cache.set(round * 100 + i, bytes(n));
        cache.get(round * 100 + ((i * 7) % (i + 1)));
        expect(cache.weight).toBeLessThanOrEqual(max);
      }
    }
    // The accounting matches what is actually held.
    let held = 0;
    for (let k = 0; k < 2000; k++) held += cache.get(k)?.byteLength ?? 0;
    expect(held).toBeLessThanOrEqual(max);
    expect(cache.weight).toBeGreaterThan(0);
  });

  it("does not keep a value heavier than half the bound, and replacing a key re-weighs it", () => {
    const cache = new LruCache<string, Uint8Array>(100, (b) => b.byteLength);
    cache.set("big", bytes(51));
    expect(cache.get("big")).toBeUndefined();
    cache.set("a", bytes(50));
    expect(cache.weight).toBe(50);
    cache.set("a", bytes(10));
    expect(cache.weight).toBe(10);
    cache.set("b", bytes(45)); // young is full (55 > 50): "a" moves to the old generation
    cache.set("a", bytes(20)); // replaces the old copy rather than holding both
    expect(cache.weight).toBe(65);
    expect(cache.get("a")?.byteLength).toBe(20);
    cache.clear();
    expect(cache.weight).toBe(0);
    expect(cache.size).toBe(0);
  });

  it("delete drops a key from either generation with its weight", () => {
    const cache = new LruCache<string, Uint8Array>(100, (b) => b.byteLength);
    cache.set("a", bytes(30));
    cache.set("b", bytes(30)); // "a" moves to the old generation
    cache.delete("a");
    cache.delete("b");
    cache.delete("missing");
    expect(cache.get("a")).toBeUndefined();
    expect(cache.get("b")).toBeUndefined();
    expect(cache.weight).toBe(0);
    expect(cache.size).toBe(0);
  });
});
