/**
 * @module
 * Keeps the stored filters of a layout-2 log's finished eras (era-filter.ts) and answers which
 * eras may hold a leaf hash.
 *
 * The filters are derived from the `h` keys, so they are built beside the log, never in its
 * batches: a commit's leaf hashes go into the open era's filter in memory once the commit has
 * resolved, and when an era fills, its filter is written (every block and the new count of
 * filtered eras, in one write) by one background task, while the sequencer goes on. After a
 * restart, a gap or a failed write, the open era's filter is incomplete; that era is then built
 * from its stored `h` keys, read in chunks, once it is finished. Until then, and for the open era,
 * lookups ask the era's keys directly. Nothing here can make a lookup miss: an era without a
 * stored filter is always asked, and a filter only ever holds more hashes than its era, never
 * fewer.
 */
import {
  blockMayHold,
  EraFilter,
  FILTER_BLOCK_BYTES,
  FILTER_BLOCKS,
  filterBlockOf,
} from "./era-filter.js";
import {
  decodeFilteredEras,
  ERA_SIZE,
  encodeFilteredEras,
  eraLeafHashRange,
  eraOf,
  FILTERED_KEY,
  filterBlockRange,
  filterGroups,
  filterKey,
  filterKeyEra,
  keyAfter,
} from "./kv-log-layout.js";
import type { KeyValueStore } from "./types.js";
import { writePuts } from "./write-puts.js";

/** `h` keys read per call when an era is built from storage. */
const SCAN_CHUNK = 16_384;

interface OpenEra {
  readonly era: number;
  /** Undefined once an index of the era was missed (a restart, a gap): built from storage then. */
  filter: EraFilter | undefined;
  /** The next index the filter expects. */
  next: number;
}

export class EraFilters {
  readonly #kv: KeyValueStore;
  /** Eras whose filter is stored (all of 0 … n − 1), once read. */
  #stored: number | undefined;
  /** Eras finished: every index below `#finished × ERA_SIZE` is committed. */
  #finished = 0;
  #open: OpenEra | undefined;
  /** Finished eras' filters built in memory, waiting to be written. */
  readonly #ready = new Map<number, EraFilter>();
  #writing: Promise<void> | undefined;
  #again = false;

  constructor(kv: KeyValueStore) {
    this.#kv = kv;
  }

  /**
   * After a commit of `count` entries from `start` resolved: their leaf hashes (32 bytes each,
   * packed) go into the open era's filter, and a filled era is written in the background.
   */
  committed(start: number, count: number, leafHashes: Uint8Array): void {
    for (let i = 0; i < count; i++) {
      const index = start + i;
      let open = this.#open;
      if (open === undefined || open.era !== eraOf(index)) {
        // Only an era seen from its first index can be built here.
        const first = index % ERA_SIZE === 0;
        open = { era: eraOf(index), filter: first ? new EraFilter() : undefined, next: index };
        this.#open = open;
      }
      if (open.filter !== undefined && open.next === index) {
        open.filter.add(leafHashes, i * 32);
        open.next++;
        if (open.next % ERA_SIZE === 0) {
          this.#ready.set(open.era, open.filter);
          this.#open = undefined;
        }
      } else {
        open.filter = undefined;
      }
    }
    this.reached(start + count);
  }

  /** The log holds `size` entries: writes the filters of eras it finished that lack one. */
  reached(size: number): void {
    const finished = Math.floor(size / ERA_SIZE);
    if (finished <= this.#finished && this.#ready.size === 0) return;
    this.#finished = Math.max(this.#finished, finished);
    if (this.#writing !== undefined) {
      this.#again = true;
      return;
    }
    this.#writing = this.#writeAll()
      .catch(() => {
        // A failed read leaves the count as stored, and the next finished era tries again; a
        // failed write also stops the store's writes (types.ts), and the sequencer's next commit
        // says so in the server's log.
      })
      .finally(() => {
        this.#writing = undefined;
      });
  }

  /** Resolves when no filter is being written (tests, tools). */
  async settled(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  async #writeAll(): Promise<void> {
    // A missing or damaged count counts 0: the eras are built and written again.
    let stored: number = this.#stored ?? (await this.#storedCount());
    this.#stored = stored;
    do {
      this.#again = false;
      while (stored < this.#finished) {
        const era = stored;
        const filter = this.#ready.get(era) ?? (await this.#build(era));
        const count = encodeFilteredEras(era + 1);
        await writePuts(this.#kv, (put) => {
          for (let b = 0; b < FILTER_BLOCKS; b++) put(filterKey(b, era), filter.block(b));
          put(FILTERED_KEY, count);
        });
        stored = this.#stored = era + 1;
        this.#ready.delete(era);
      }
      for (const era of this.#ready.keys()) if (era < stored) this.#ready.delete(era);
    } while (this.#again);
  }

  async #storedCount(): Promise<number> {
    const count = await this.#kv.get(FILTERED_KEY);
    return (count === undefined ? undefined : decodeFilteredEras(count)) ?? 0;
  }

  /** An era's filter from its stored `h` keys. */
  async #build(era: number): Promise<EraFilter> {
    const filter = new EraFilter();
    const { lt } = eraLeafHashRange(era);
    let gte = eraLeafHashRange(era).gte;
    for (;;) {
      const rows = await this.#kv.range({ gte, lt, limit: SCAN_CHUNK });
      for (const [key] of rows) filter.add(key, 5);
      if (rows.length < SCAN_CHUNK) return filter;
      gte = keyAfter(rows[rows.length - 1]![0]);
    }
  }

  /**
   * The eras of a log of `size` entries that may hold `leafHash`, ascending: every era but those
   * whose stored filter block rules it out. A lookup reads the blocks (`blocks`) beside the
   * tree state, without the count of filtered eras: an era's blocks are written in one write
   * with that count, so a stored block is a finished filter, and an era without one (the open
   * era, one not yet written, a lost block) is asked.
   */
  static eras(
    leafHash: Uint8Array,
    size: number,
    blocks: readonly [Uint8Array, Uint8Array][],
  ): number[] {
    if (size === 0) return [];
    const ruledOut = new Set<number>();
    for (const [key, value] of blocks) {
      const era = filterKeyEra(key);
      if (
        era !== undefined &&
        value.length === FILTER_BLOCK_BYTES &&
        !blockMayHold(value, leafHash)
      ) {
        ruledOut.add(era);
      }
    }
    const eras: number[] = [];
    for (let era = 0; era <= eraOf(size - 1); era++) if (!ruledOut.has(era)) eras.push(era);
    return eras;
  }

  /**
   * `leafHash`'s filter block in every era of the filter groups [from, to) (kv-log-layout.ts),
   * one range read per group, in parallel.
   */
  async blocks(
    leafHash: Uint8Array,
    from: number,
    to: number,
  ): Promise<[Uint8Array, Uint8Array][]> {
    const block = filterBlockOf(leafHash);
    const reads: Promise<[Uint8Array, Uint8Array][]>[] = [];
    for (let g = from; g < to; g++) reads.push(this.#kv.range(filterBlockRange(g, block)));
    return (await Promise.all(reads)).flat();
  }

  /** The filter groups a log of `size` entries may have blocks in. */
  static groups(size: number): number {
    return filterGroups(Math.floor(size / ERA_SIZE));
  }
}
