/**
 * @module
 * Entry ids and timestamps. Ids are UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7,
 * a 12-bit counter (method 1 of §6.2, seeded randomly each millisecond), variant 10, and 62
 * random bits. The generator is monotonic: ids and timestamps never decrease in the order they
 * are issued, even if the wall clock steps back, so index order is id order is time order.
 */
import { randomFillSync } from "node:crypto";
import { ID_SIZE } from "../core/entry.js";

export interface IssuedId {
  readonly id: Uint8Array;
  /** Milliseconds since the Unix epoch; equal to the time in the id. */
  readonly timestamp: number;
}

export class IdGenerator {
  readonly #clock: () => number;
  #lastMs: number;
  #counter = 0;

  /**
   * `last`: the id of the last entry already in the log (none for a new log). Issuing resumes
   * after it, so ids keep increasing across restarts even when the clock has not moved on.
   */
  constructor(clock: () => number = Date.now, last?: Uint8Array) {
    this.#clock = clock;
    this.#lastMs = 0;
    if (last !== undefined) {
      for (let b = 0; b < 6; b++) this.#lastMs = this.#lastMs * 256 + last[b]!;
      this.#counter = (last[6]! % 16) * 256 + last[7]!;
    }
  }

  /** Issues `count` ids in order (one random fill for the whole batch). */
  issue(count: number): IssuedId[] {
    const ids = new Uint8Array(count * ID_SIZE);
    const timestamps = new Float64Array(count);
    this.issueInto(count, ids, timestamps);
    const out: IssuedId[] = new Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = { id: ids.slice(i * ID_SIZE, (i + 1) * ID_SIZE), timestamp: timestamps[i]! };
    }
    return out;
  }

  /**
   * Issues `count` ids in order into `ids` (16 bytes each, back to back) and their timestamps
   * into `timestamps`: the sequencer's form, no object per id.
   */
  issueInto(count: number, ids: Uint8Array, timestamps: Float64Array): void {
    const random = randomFillSync(new Uint8Array(count * 10));
    for (let i = 0; i < count; i++) {
      let ms = Math.max(this.#clock(), this.#lastMs);
      if (ms === this.#lastMs) {
        this.#counter++;
      } else {
        this.#counter = random[i * 10]! % 0x800; // leave room to count up within the millisecond
      }
      if (this.#counter > 0xfff) {
        ms++; // 4,096 ids in one millisecond: borrow the next one rather than repeat
        this.#counter = 0;
      }
      this.#lastMs = ms;
      const o = i * ID_SIZE;
      let t = ms;
      for (let b = 5; b >= 0; b--) {
        ids[o + b] = t % 256;
        t = Math.floor(t / 256);
      }
      ids[o + 6] = 0x70 + Math.floor(this.#counter / 256);
      ids[o + 7] = this.#counter % 256;
      for (let k = 0; k < 8; k++) ids[o + 8 + k] = random[i * 10 + 2 + k]!;
      ids[o + 8] = 0x80 + (ids[o + 8]! % 0x40);
      timestamps[i] = ms;
    }
  }
}
