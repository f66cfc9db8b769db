/**
 * @module
 * An offline check of one log's storage (`vellum fsck`; spec/storage.md, "Checking a data
 * directory"): every stored leaf re-hashed, the tree re-derived from the leaves and compared with
 * every stored tile node and the stored tree state, every stored checkpoint's signatures checked
 * with the log's key and its root compared with the re-derived tree at its size, and every
 * lookup index (id, leaf hash, payload, idempotency key → index) checked in full, and entry
 * timestamps checked never to decrease with the index.
 *
 * The walk's tree and stored strata are fsck-tree.ts; this file is the report's types and the
 * run, one short method a check (over 400 lines for the dozen checks, each with its messages).
 *
 * One pass in key order, streaming: entries, tiles and checkpoints are read in bounded chunks
 * while the tree is rebuilt with a compact range (O(log n) hashes), so memory stays flat however
 * large the log is. The lookup indexes are checked forwards (each entry's keys point at it, in
 * one multi-get per chunk) and by count (each index holds exactly one key per entry, none
 * pointing beyond the tree), which together prove each index is exactly the entries' keys.
 *
 * Each fault is reported once, where it is, not again in every node and checkpoint above it: a
 * leaf whose hash differs from the stored level-0 hash is reported, then the stored hash stands
 * in for it (so a flipped leaf is that one problem); a stored interior node that is not the hash
 * of its children is reported and the re-derived hash goes on up (so a flipped tile node is that
 * one problem). A flipped level-0 hash in a tile shows as two: the leaf and its parent node.
 *
 * Pure over the storage contract: no files, no argv (src/cli/fsck.ts is the command).
 */

import { bytesEqual, getUint64, hexEncode } from "../core/bytes.js";
import { type Checkpoint, openCheckpoint } from "../core/checkpoint.js";
import { cosignatureVerifier } from "../core/cosignature.js";
import { sha256 } from "../core/crypto.js";
import { decodeLeaf, formatUuid } from "../core/entry.js";
import { VellumError } from "../core/errors.js";
import {
  type NoteVerifier,
  parseVerifierKey,
  SIG_TYPE_ED25519,
  verifierFromPublicKey,
} from "../core/keys.js";
import { hashLeaf } from "../core/rfc6962.js";
import { partialTileWidth, TILE_HEIGHT, TILE_WIDTH } from "../core/tiles.js";
import { decodeUndo, UNDO_KEY } from "../storage/batch-undo.js";
import { blockMayHold, FILTER_BLOCK_BYTES, filterBlockOf } from "../storage/era-filter.js";
import {
  CHECKPOINT_RANGE,
  DEDUP_KEY,
  decodeFilteredEras,
  decodeIndex,
  ENTRIES_STORE_LAYOUT,
  encodeIndex,
  entryKey,
  eraOf,
  FILTERED_KEY,
  filterKey,
  idKey,
  LAYOUT_KEY,
  LEAF_HASH_LAYOUT,
  leafHashKey,
  MIGRATION_KEY,
  payloadKey,
  STATE_KEY,
} from "../storage/kv-log-layout.js";
import { decodeDedup } from "../storage/kv-log-store.js";
import { rollbackStrata } from "../storage/stratum-bytes.js";
import { decodeState, type TreeState } from "../storage/tree-state.js";
import type { KeyValueStore } from "../storage/types.js";
import { DerivedTree, type FsckProblem, StoredStrata, scan, short, TAG } from "./fsck-tree.js";

export interface FsckOptions {
  /** The log's namespace. */
  readonly kv: KeyValueStore;
  /** The log's namespace in the entries database (DATA/entries), where layout 3 keeps leaves. */
  readonly entries?: KeyValueStore;
  /** The log's verifier key (DATA/log.vkey): checkpoints must carry its signatures. */
  readonly verifierKey: string;
  /** The checkpoint remembered outside the database (DATA/checkpoint), if any. */
  readonly lastPublished?: string;
  /** Called after each chunk of work, for a progress line. */
  readonly onProgress?: (progress: FsckProgress) => void;
  /** Entries read per storage call (default 256: at most one 16.6 MB bundle's worth). */
  readonly chunk?: number;
  /** Most problems kept in the report (all are counted; default 1000). */
  readonly maxProblems?: number;
}

export interface FsckProgress {
  readonly phase: "entries" | "indexes";
  readonly done: number;
  /** The stored tree's size (entries), when known. */
  readonly total: number | undefined;
}

export type { FsckProblem, FsckProblemKind } from "./fsck-tree.js";

export interface FsckReport {
  readonly origin: string;
  /** The stored tree state's size (undefined when the state is missing or damaged). */
  readonly size: number | undefined;
  /** Leaves re-hashed. */
  readonly entries: number;
  /**
   * Layout 3: leaves stored past the tree's size, those of a batch a crash or failure cut off
   * between its leaves' write and its own (never acknowledged; the next start deletes them).
   * Not a problem; in layouts 1 and 2 such leaves are problems instead.
   */
  readonly strayLeaves: number;
  /**
   * Layout 3: the last batch's own write was stored without its leaves (a crash between the
   * two; never acknowledged): the tree size it stored (`to`) and the one before it (`from`). The
   * rest is checked as of `from`, without that batch's keys, strata and checkpoint, which the
   * next start removes with its undo record (spec/storage.md). Not a problem.
   */
  readonly unfinishedBatch?: { readonly from: number; readonly to: number };
  /** Stored tree nodes compared with the re-derived ones. */
  readonly nodes: number;
  /** Stored tiles (strata) read. */
  readonly tiles: number;
  /** Stored checkpoints checked (signatures and root). */
  readonly checkpoints: number;
  /** Size of DATA/checkpoint, if one was given and it verified. */
  readonly lastPublished: number | undefined;
  /** Keys checked in each lookup index. */
  readonly indexes: {
    readonly id: number;
    readonly leafHash: number;
    readonly payload: number;
    readonly idempotencyKey: number;
  };
  readonly problemCount: number;
  /** The first `maxProblems` problems, in the order found. */
  readonly problems: readonly FsckProblem[];
  readonly clean: boolean;
}

/** Checks one log's storage; never writes. Resolves to a report (problems are not thrown). */
export function fsck(options: FsckOptions): Promise<FsckReport> {
  return new FsckRun(options).run();
}

interface Lookup {
  readonly index: number;
  readonly id: Uint8Array;
  readonly leafHash: Uint8Array;
  readonly payload: Uint8Array;
}

/** One run of the check: its cursors, the re-derived tree and what it found. */
class FsckRun {
  readonly #options: FsckOptions;
  readonly #kv: KeyValueStore;
  readonly #chunk: number;
  readonly #maxProblems: number;
  readonly #origin: string;
  readonly #verifiers: [NoteVerifier, NoteVerifier];
  readonly #problems: FsckProblem[] = [];
  #problemCount = 0;
  readonly #report = (p: FsckProblem) => {
    this.#problemCount++;
    if (this.#problems.length < this.#maxProblems) this.#problems.push(p);
  };
  readonly #strata: StoredStrata;
  readonly #tree: DerivedTree;
  #state: TreeState | undefined;
  /** Under payload dedup (and in logs from before the setting) every entry has a payload index. */
  #payloadIndexed = true;
  #leafHashLayout = 1;
  /** Layout 2: eras 0 … n − 1 have a stored filter (era-filter.ts), which must hold their hashes. */
  #filteredEras = 0;
  #hashed = 0;
  #checkpoints = 0;
  #cpCursor: AsyncGenerator<[Uint8Array, Uint8Array]>;
  #nextCp: IteratorResult<[Uint8Array, Uint8Array]> | undefined;
  #external: Checkpoint | undefined;
  readonly #lookups: Lookup[] = [];
  #beyond = 0;
  #stray = 0;
  #lastStamp: { index: number; timestamp: number } | undefined;
  /** The unfinished last batch (layout 3), with its lookup keys (hex) and strata ("level/index"). */
  #unfinished: { from: number; to: number; keys: Set<string>; tiles: Set<string> } | undefined;

  constructor(options: FsckOptions) {
    this.#options = options;
    this.#kv = options.kv;
    this.#chunk = options.chunk ?? 256;
    this.#maxProblems = options.maxProblems ?? 1000;
    const key = parseVerifierKey(options.verifierKey.trim());
    if (key.type !== SIG_TYPE_ED25519) {
      throw new VellumError("BAD_KEY", "the log's verifier key must be an Ed25519 (type 0x01) key");
    }
    this.#origin = key.name;
    this.#verifiers = [
      verifierFromPublicKey(key.name, key.publicKey, SIG_TYPE_ED25519),
      cosignatureVerifier(key.name, key.publicKey),
    ];
    this.#strata = new StoredStrata(this.#kv, this.#report);
    this.#tree = new DerivedTree(this.#strata, this.#report);
    this.#cpCursor = scan(this.#kv, CHECKPOINT_RANGE.gte, CHECKPOINT_RANGE.lt, 256);
  }

  async run(): Promise<FsckReport> {
    await this.#readState();
    this.#nextCp = await this.#cpCursor.next();
    if (this.#options.lastPublished !== undefined) {
      this.#external = this.#openNote(this.#options.lastPublished, "DATA/checkpoint");
    }
    await this.#walkEntries();
    const size = this.#state?.size ?? this.#tree.count;
    await this.#checkpointsBeyond(size);
    this.#checkState();
    await this.#checkTiles(size);
    const indexes = await this.#countIndexes(size);
    return {
      origin: this.#origin,
      size: this.#state?.size,
      entries: this.#hashed,
      strayLeaves: this.#stray,
      ...(this.#unfinished !== undefined && {
        unfinishedBatch: { from: this.#unfinished.from, to: this.#unfinished.to },
      }),
      nodes: this.#tree.nodes,
      tiles: this.#strata.read,
      checkpoints: this.#checkpoints,
      lastPublished: this.#external?.size,
      indexes,
      problemCount: this.#problemCount,
      problems: this.#problems,
      clean: this.#problemCount === 0,
    };
  }

  /** The stored tree state and dedup rule. */
  async #readState(): Promise<void> {
    const [stateBytes, dedupBytes, layoutBytes, filteredBytes, migrating] = await this.#kv.getMany([
      STATE_KEY,
      DEDUP_KEY,
      LAYOUT_KEY,
      FILTERED_KEY,
      MIGRATION_KEY,
    ]);
    if (migrating !== undefined) {
      this.#report({
        kind: "state",
        message:
          "the log's move to layout 3 (vellum migrate) was cut off before it finished: the log does not open until `vellum migrate` is run again",
      });
    }
    if (filteredBytes !== undefined) {
      const eras = decodeFilteredEras(filteredBytes);
      if (eras === undefined) {
        this.#report({ kind: "state", message: "the count of filtered eras (f) is damaged" });
      }
      this.#filteredEras = eras ?? 0;
    }
    // The leaf-hash index's layout (kv-log-layout.ts): absent in logs made before layout 2.
    if (layoutBytes !== undefined) {
      const layout = layoutBytes.length === 1 ? layoutBytes[0]! : 0;
      if (layout === LEAF_HASH_LAYOUT || layout === ENTRIES_STORE_LAYOUT) {
        this.#leafHashLayout = layout;
      } else {
        this.#report({ kind: "state", message: "the layout key (l) holds an unknown layout" });
      }
    }
    // Under key dedup no payload index is written (older entries of a log switched to it may
    // keep theirs).
    this.#payloadIndexed = dedupBytes === undefined || decodeDedup(dedupBytes) === "payload";
    if (stateBytes === undefined) {
      this.#report({ kind: "state", message: "the tree state (key s) is missing" });
      return;
    }
    try {
      this.#state = decodeState(stateBytes);
    } catch (e) {
      this.#report({
        kind: "state",
        message: `the tree state does not decode: ${(e as Error).message}`,
      });
    }
    await this.#findUnfinished();
  }

  /**
   * Layout 3: a stored tree missing its last leaf, with the undo record of exactly that batch,
   * is a batch a crash cut off between its two writes (spec/storage.md): the check goes on as of
   * the size before it. Anything else missing is left to the walk to report.
   */
  async #findUnfinished(): Promise<void> {
    const state = this.#state;
    const entries = this.#options.entries;
    if (this.#leafHashLayout !== ENTRIES_STORE_LAYOUT || entries === undefined) return;
    if (state === undefined || state.size === 0) return;
    if ((await entries.get(entryKey(state.size - 1))) !== undefined) return;
    const stored = await this.#kv.get(UNDO_KEY);
    if (stored === undefined) return;
    let before: TreeState;
    let undo: ReturnType<typeof decodeUndo>;
    try {
      undo = decodeUndo(stored);
      before = decodeState(undo.stateBefore);
    } catch {
      return;
    }
    if (undo.sizeAfter !== state.size || before.size !== undo.start) return;
    const keys = new Set<string>();
    for (let i = 0; i < undo.count; i++) {
      keys.add(hexEncode(idKey(undo.ids.subarray(i * 16, i * 16 + 16))));
      const hash = undo.leafHashes.subarray(i * 32, i * 32 + 32);
      keys.add(hexEncode(leafHashKey(hash, undo.start + i, ENTRIES_STORE_LAYOUT)));
    }
    for (const key of undo.hashedKeys) keys.add(hexEncode(key));
    const tiles = new Set(
      rollbackStrata(before.size, state.size).map((t) => `${t.level}/${t.index}`),
    );
    this.#unfinished = { from: before.size, to: state.size, keys, tiles };
    this.#state = before;
  }

  #openNote(note: string, what: string): Checkpoint | undefined {
    try {
      const opened = openCheckpoint(note, this.#verifiers[0], [this.#verifiers[1]]);
      if (!opened.signatures.some((s) => s.timestamp !== undefined)) {
        this.#report({
          kind: "checkpoint",
          message: `${what} has no timestamp signature by the log's key`,
        });
      }
      return opened.checkpoint;
    } catch (e) {
      this.#report({
        kind: "checkpoint",
        message: `${what} does not verify with the log's key ${this.#origin}: ${(e as Error).message}`,
      });
      return undefined;
    }
  }

  #compareRoot(size: number, rootHash: Uint8Array, what: string): void {
    const derived = this.#tree.root();
    if (!bytesEqual(derived, rootHash)) {
      this.#report({
        kind: "checkpoint",
        message: `${what} has root ${short(rootHash)}, the tree re-derived at size ${size} has ${short(derived)}`,
      });
    }
  }

  /** Checks the checkpoints of the size the walk has just reached. */
  async #checkpointsAt(): Promise<void> {
    const count = this.#tree.count;
    while (
      this.#nextCp !== undefined &&
      !this.#nextCp.done &&
      getUint64(this.#nextCp.value[0], 1, "checkpoint key") <= count
    ) {
      const [cpKey, value] = this.#nextCp.value;
      const size = getUint64(cpKey, 1, "checkpoint key");
      this.#checkpoints++;
      const cp = this.#openNote(new TextDecoder().decode(value), `checkpoint at size ${size}`);
      if (cp !== undefined && cp.size !== size) {
        this.#report({
          kind: "checkpoint",
          message: `checkpoint stored under size ${size} is for size ${cp.size}`,
        });
      } else if (cp !== undefined) {
        this.#compareRoot(size, cp.rootHash, `checkpoint at size ${size}`);
      }
      this.#nextCp = await this.#cpCursor.next();
    }
    if (this.#external?.size === count) {
      this.#compareRoot(count, this.#external.rootHash, "DATA/checkpoint");
    }
  }

  /** The lookup indexes of the last chunk of entries: each key must point at its entry. */
  async #checkLookups(): Promise<void> {
    const lookups = this.#lookups;
    if (lookups.length === 0) return;
    const byPayload = this.#payloadIndexed;
    const per = byPayload ? 3 : 2;
    const keys = lookups.flatMap((l) => [
      idKey(l.id),
      leafHashKey(l.leafHash, l.index, this.#leafHashLayout),
      ...(byPayload ? [payloadKey(sha256(l.payload))] : []),
    ]);
    const found = await this.#kv.getMany(keys);
    await this.#checkFilters(lookups);
    lookups.forEach((l, i) => {
      const names = [`id ${formatUuid(l.id)}`, `leaf hash ${short(l.leafHash)}`, "payload hash"];
      for (let k = 0; k < per; k++) {
        const v = found[per * i + k];
        if (v === undefined || !bytesEqual(v, encodeIndex(l.index))) {
          this.#report({
            kind: "index",
            index: l.index,
            message: `the ${["id", "leaf-hash", "payload"][k]} index ${v === undefined ? "lacks" : `maps to ${v.length === 8 ? decodeIndex(v) : "a damaged value"} instead of`} entry ${l.index} (${names[k]})`,
          });
        }
      }
    });
    lookups.length = 0;
  }

  /**
   * Layout 2: each entry of an era with a stored filter is in its filter block. A filter that
   * lacks a leaf hash makes a lookup by that hash miss (a lookup asks only the eras that may
   * hold it).
   */
  async #checkFilters(lookups: readonly Lookup[]): Promise<void> {
    if (this.#leafHashLayout === 1) return;
    const filtered = lookups.filter((l) => eraOf(l.index) < this.#filteredEras);
    if (filtered.length === 0) return;
    const blocks = await this.#kv.getMany(
      filtered.map((l) => filterKey(filterBlockOf(l.leafHash), eraOf(l.index))),
    );
    filtered.forEach((l, i) => {
      const block = blocks[i];
      if (block?.length === FILTER_BLOCK_BYTES && blockMayHold(block, l.leafHash)) return;
      this.#report({
        kind: "index",
        index: l.index,
        message: `the leaf-hash filter of era ${eraOf(l.index)} ${block === undefined ? "lacks the block of" : "does not hold"} entry ${l.index} (leaf hash ${short(l.leafHash)}): a lookup by it would miss`,
      });
    });
  }

  /** Every stored entry in key order: re-hashed, appended to the re-derived tree, decoded. */
  async #walkEntries(): Promise<void> {
    const limit = this.#state?.size ?? Number.MAX_SAFE_INTEGER;
    const chunk = this.#chunk;
    await this.#checkpointsAt(); // those of size 0
    const apart = this.#leafHashLayout === ENTRIES_STORE_LAYOUT;
    if (apart && this.#options.entries === undefined) {
      this.#report({
        kind: "state",
        message:
          "the log keeps its leaves in the entries database (layout 3), and there is none (DATA/entries is missing)",
      });
    }
    if (apart && this.#options.entries !== undefined) {
      // Layout 3 writes no leaf beside the tree: one there was put by something else.
      const [misplaced] = await this.#kv.range({
        gte: Uint8Array.of(TAG.entry),
        lt: Uint8Array.of(TAG.entry + 1),
        limit: 1,
      });
      if (misplaced !== undefined) {
        this.#report({
          kind: "entry",
          message: `a leaf is stored in DATA/db (key ${hexEncode(misplaced[0])}), where a log of layout 3 keeps none: its leaves are in DATA/entries`,
        });
      }
    }
    const leafKv = apart ? (this.#options.entries ?? this.#kv) : this.#kv;
    const entries = scan(leafKv, Uint8Array.of(TAG.entry), Uint8Array.of(TAG.entry + 1), chunk);
    for await (const [entryKey, leaf] of entries) {
      if (entryKey.length !== 9) {
        this.#report({
          kind: "entry",
          message: `an entry key of ${entryKey.length} bytes is damaged`,
        });
        continue;
      }
      const index = getUint64(entryKey, 1, "entry key");
      if (index >= limit && apart) {
        this.#stray++;
        continue;
      }
      if (index >= limit) {
        if (this.#beyond++ < 10) {
          this.#report({
            kind: "entry",
            index,
            message: `entry ${index} is stored beyond the tree's size ${limit}`,
          });
        }
        continue;
      }
      await this.#entry(index, leaf);
      if (index % chunk === chunk - 1) {
        this.#options.onProgress?.({
          phase: "entries",
          done: this.#tree.count,
          total: this.#state?.size,
        });
      }
    }
    if (this.#beyond > 10) {
      this.#report({
        kind: "entry",
        message: `${this.#beyond - 10} more entries are stored beyond the tree's size`,
      });
    }
    while (this.#state !== undefined && this.#tree.count < this.#state.size) {
      await this.#tree.append(this.#tree.count, undefined);
      await this.#checkpointsAt();
    }
    this.#tree.finish();
    await this.#checkLookups();
  }

  /** One stored entry: the missing ones before it, then it, then the checkpoints at its size. */
  async #entry(index: number, leaf: Uint8Array): Promise<void> {
    while (this.#tree.count < index) {
      await this.#tree.append(this.#tree.count, undefined);
      await this.#checkpointsAt();
    }
    const leafHash = hashLeaf(leaf);
    this.#hashed++;
    if (await this.#tree.append(index, leafHash)) {
      try {
        const { id, timestamp, payload } = decodeLeaf(leaf);
        this.#lookups.push({ index, id, leafHash, payload });
        this.#checkTimestamp(index, timestamp);
      } catch (e) {
        this.#report({
          kind: "entry",
          index,
          message: `entry ${index} does not decode: ${(e as Error).message}`,
        });
      }
    }
    if (this.#lookups.length >= this.#chunk) await this.#checkLookups();
    await this.#checkpointsAt();
  }

  /**
   * Timestamps never decrease with the index (ids.ts): what makes a time window an index range,
   * which the audit trail's completeness proofs rest on.
   */
  #checkTimestamp(index: number, timestamp: number): void {
    const last = this.#lastStamp;
    if (last !== undefined && timestamp < last.timestamp) {
      this.#report({
        kind: "entry",
        index,
        message: `entry ${index} has timestamp ${timestamp}, before entry ${last.index}'s ${last.timestamp}: timestamps must never decrease`,
      });
    }
    this.#lastStamp = { index, timestamp };
  }

  /** Checkpoints beyond the tree: their signatures are still checked. */
  async #checkpointsBeyond(size: number): Promise<void> {
    while (this.#nextCp !== undefined && !this.#nextCp.done) {
      const cpSize = getUint64(this.#nextCp.value[0], 1, "checkpoint key");
      this.#checkpoints++;
      this.#openNote(
        new TextDecoder().decode(this.#nextCp.value[1]),
        `checkpoint at size ${cpSize}`,
      );
      // The unfinished batch's own checkpoint: removed with it at the next start.
      if (cpSize === this.#unfinished?.to) {
        this.#nextCp = await this.#cpCursor.next();
        continue;
      }
      this.#report({
        kind: "checkpoint",
        message: `checkpoint at size ${cpSize} is beyond the stored tree (size ${size}): entries were lost`,
      });
      this.#nextCp = await this.#cpCursor.next();
    }
    const external = this.#external;
    if (external !== undefined && external.size > size) {
      this.#report({
        kind: "checkpoint",
        message: `DATA/checkpoint has size ${external.size} but storage holds a tree of ${size}: data was lost or rolled back`,
      });
    }
  }

  /** The stored tree state's compact range against the re-derived one. */
  #checkState(): void {
    const hashes = this.#tree.hashes;
    this.#state?.compact.forEach((h, i) => {
      if (hashes[i] === undefined || !bytesEqual(h, hashes[i]!)) {
        this.#report({
          kind: "state",
          message: `the tree state's compact range hash ${i} is ${short(h)}, the re-derived tree's is ${short(hashes[i])}`,
        });
      }
    });
  }

  /** The edge of every tile level, and no stored tile beyond the tree. */
  async #checkTiles(size: number): Promise<void> {
    let topLevel = -1;
    for (let level = 0; level * TILE_HEIGHT <= 53 && TILE_WIDTH ** level <= size; level++) {
      topLevel = level;
      const width = partialTileWidth(size, level);
      const edge = Math.floor(size / TILE_WIDTH ** (level + 1));
      const here = this.#strata.current.get(level);
      const unfinished = this.#unfinished?.tiles;
      if (
        width > 0 &&
        here?.index === edge &&
        here.stratum !== undefined &&
        !unfinished?.has(`${level}/${edge}`)
      ) {
        if (here.stratum.width !== width) {
          this.#report({
            kind: "tile",
            message: `edge tile ${level}/${edge} holds ${here.stratum.width} hashes, the tree of size ${size} has ${width}`,
          });
        }
      }
      for await (const index of this.#strata.rest(level)) {
        if (unfinished?.has(`${level}/${index}`)) continue;
        this.#report({
          kind: "tile",
          message: `stored tile ${level}/${index} lies beyond the tree (size ${size})`,
        });
      }
    }
    const above = scan(
      this.#kv,
      Uint8Array.of(TAG.tile, topLevel + 1),
      Uint8Array.of(TAG.tile + 1),
      64,
    );
    for await (const [tileKey] of above) {
      const at = `${tileKey[1]}/${tileKey.length === 10 ? getUint64(tileKey, 2) : "?"}`;
      if (this.#unfinished?.tiles.has(at)) continue;
      this.#report({
        kind: "tile",
        message: `stored tile ${tileKey[1]}/${tileKey.length === 10 ? getUint64(tileKey, 2) : "?"} lies beyond the tree (size ${size})`,
      });
    }
  }

  /** The lookup indexes by count: one key per entry, none beyond the tree. */
  async #countIndexes(size: number): Promise<FsckReport["indexes"]> {
    const indexes = { id: 0, leafHash: 0, payload: 0, idempotencyKey: 0 };
    const counted: [keyof typeof indexes, number, string, boolean][] = [
      ["id", TAG.id, "id", true],
      ["leafHash", TAG.leaf, "leaf-hash", true],
      ["payload", TAG.payload, "payload", this.#payloadIndexed],
      ["idempotencyKey", TAG.idem, "idempotency-key", false],
    ];
    for (const [field, tag, name, onePerEntry] of counted) {
      let n = 0;
      let outside = 0;
      const keys = scan(this.#kv, Uint8Array.of(tag), Uint8Array.of(tag + 1), 4096);
      const unfinished = this.#unfinished?.keys;
      for await (const [key, value] of keys) {
        // The unfinished batch's keys: removed with it at the next start.
        if (unfinished?.has(hexEncode(key))) continue;
        n++;
        if (value.length !== 8 || decodeIndex(value) >= size) outside++;
        if (n % 65536 === 0) this.#options.onProgress?.({ phase: "indexes", done: n, total: size });
      }
      indexes[field] = n;
      if (outside > 0) {
        this.#report({
          kind: "index",
          message: `the ${name} index holds ${outside} key(s) pointing beyond the tree (size ${size}) or damaged`,
        });
      }
      if (onePerEntry && n !== size) {
        this.#report({
          kind: "index",
          message: `the ${name} index holds ${n} keys for a tree of ${size} entries`,
        });
      }
    }
    return indexes;
  }
}
