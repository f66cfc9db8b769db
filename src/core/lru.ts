/**
 * @module
 * A bounded cache with approximately least-recently-used eviction, in two generations: hits in
 * the young generation cost one Map lookup (no reordering, unlike a strict LRU); hits in the old
 * generation move the entry to the young one; when the young generation is full it becomes the
 * old one and the previous old one is dropped.
 *
 * Invariant: the total weight held is at most `maxWeight` (each generation holds at most half).
 * The weight of an entry is 1 by default (a bound on the count, for values of one size) or what
 * `weigh` says (e.g. a byte length, for values whose sizes differ by orders of magnitude, such
 * as entry bundles: a count bound let 1,024 bundles of up to 16.6 MB each pile up). A value
 * heavier than half the bound is not cached at all.
 */
export class LruCache<K, V> {
  readonly #half: number;
  readonly #weigh: (value: V) => number;
  #young = new Map<K, V>();
  #youngWeight = 0;
  #old = new Map<K, V>();
  #oldWeight = 0;

  /** A bound below 2 has no room for two generations: the young one is all there is. */
  readonly #single: boolean;

  constructor(maxWeight: number, weigh: (value: V) => number = () => 1) {
    this.#single = maxWeight < 2;
    this.#half = this.#single ? Math.max(0, maxWeight) : Math.floor(maxWeight / 2);
    this.#weigh = weigh;
  }

  get(key: K): V | undefined {
    const value = this.#young.get(key);
    if (value !== undefined) return value;
    const old = this.#old.get(key);
    if (old !== undefined) {
      this.#old.delete(key);
      this.#oldWeight -= this.#weigh(old);
      this.set(key, old);
    }
    return old;
  }

  set(key: K, value: V): void {
    const weight = this.#weigh(value);
    if (weight > this.#half) return;
    const previous = this.#young.get(key);
    if (previous !== undefined) {
      this.#young.delete(key);
      this.#youngWeight -= this.#weigh(previous);
    }
    const stale = this.#old.get(key);
    if (stale !== undefined) {
      this.#old.delete(key);
      this.#oldWeight -= this.#weigh(stale);
    }
    if (this.#youngWeight + weight > this.#half) {
      this.#old = this.#single ? new Map() : this.#young;
      this.#oldWeight = this.#single ? 0 : this.#youngWeight;
      this.#young = new Map();
      this.#youngWeight = 0;
    }
    this.#young.set(key, value);
    this.#youngWeight += weight;
  }

  /** Drops `key` if held. */
  delete(key: K): void {
    const young = this.#young.get(key);
    if (young !== undefined) {
      this.#young.delete(key);
      this.#youngWeight -= this.#weigh(young);
    }
    const old = this.#old.get(key);
    if (old !== undefined) {
      this.#old.delete(key);
      this.#oldWeight -= this.#weigh(old);
    }
  }

  clear(): void {
    this.#young.clear();
    this.#old.clear();
    this.#youngWeight = 0;
    this.#oldWeight = 0;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** The total weight held (the entry count when no `weigh` was given). */
  get weight(): number {
    return this.#youngWeight + this.#oldWeight;
  }
}
