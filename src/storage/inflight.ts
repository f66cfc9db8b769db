/**
 * @module
 * Counts operations in flight so `close()` can wait for them (storage contract: "close() waits
 * for in-flight writes, then releases the store").
 */
export class InFlight {
  #count = 0;
  #waiters: (() => void)[] = [];

  get count(): number {
    return this.#count;
  }

  enter(): void {
    this.#count++;
  }

  leave(): void {
    this.#count--;
    if (this.#count === 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    }
  }

  /** Runs `f` as one in-flight operation. */
  async run<T>(f: () => Promise<T>): Promise<T> {
    this.enter();
    try {
      return await f();
    } finally {
      this.leave();
    }
  }

  /** Resolves once nothing is in flight (at once if nothing is). */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
