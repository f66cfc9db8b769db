/**
 * @module
 * Mutual exclusion for async work: `run(fn)` starts `fn` once every earlier `run` has settled
 * (fulfilled or rejected), so what it serialises never interleaves across awaits. `KeyedMutex`
 * keeps one such queue per key and forgets a key once its queue is empty. A rejection is passed
 * to the caller of that `run` only; it never blocks the next one.
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

export class KeyedMutex<K> {
  readonly #tails = new Map<K, Promise<unknown>>();

  run<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Keys with work queued or running (for tests and metrics). */
  get size(): number {
    return this.#tails.size;
  }
}
