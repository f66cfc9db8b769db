/**
 * @module
 * An offline check of one log's storage (`vellum fsck`; spec/storage.md, "Checking a data
 * directory"): every stored leaf re-hashed, the tree re-derived from the leaves and compared with
 * every stored tile node and the stored tree state, every stored checkpoint's signatures checked
 * with the log's key and its root compared with the re-derived tree at its size, and every
 * lookup index (id, leaf hash, payload, idempotency key → index) checked in full, and entry
 * timestamps checked never to decrease with the index.
 *
 * Over 400 lines because it is one streaming pass whose parts share its cursors and running
 * tree; split, each part would need them passed around.
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
import { openCheckpoint } from "../core/checkpoint.js";
import { foldRight } from "../core/compact.js";
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
import { EMPTY_ROOT, HASH_SIZE, hashChildren, hashLeaf } from "../core/rfc6962.js";
import { partialTileWidth, TILE_HEIGHT, TILE_WIDTH } from "../core/tiles.js";
import {
  CHECKPOINT_RANGE,
  DEDUP_KEY,
  decodeIndex,
  encodeIndex,
  idKey,
  leafHashKey,
  payloadKey,
  STATE_KEY,
} from "../storage/kv-log-layout.js";
import { decodeDedup } from "../storage/kv-log-store.js";
import { decodeState, type TreeState } from "../storage/tree-state.js";
import type { KeyValueStore } from "../storage/types.js";
import { nodeAddress, Stratum } from "./strata.js";

export interface FsckOptions {
  /** The log's namespace. */
  readonly kv: KeyValueStore;
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

export type FsckProblemKind = "state" | "entry" | "tile" | "checkpoint" | "index";

export interface FsckProblem {
  readonly kind: FsckProblemKind;
  readonly message: string;
  /** The entry index it concerns, if one. */
  readonly index?: number;
}

export interface FsckReport {
  readonly origin: string;
  /** The stored tree state's size (undefined when the state is missing or damaged). */
  readonly size: number | undefined;
  /** Leaves re-hashed. */
  readonly entries: number;
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

const TAG = { entry: 0x65, tile: 0x74, id: 0x69, leaf: 0x68, payload: 0x70, idem: 0x6b };
const short = (hash: Uint8Array | undefined) =>
  hash === undefined ? "none" : `${hexEncode(hash).slice(0, 16)}…`;
const tileName = (level: number, index: number) => {
  const at = nodeAddress(level, index);
  return `tile ${at.tileLevel}/${at.tileIndex}`;
};

/** The key right after `key` in bytewise order. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/** Every [key, value] with gte <= key < lt, in order, read `chunk` at a time. */
async function* scan(
  kv: KeyValueStore,
  gte: Uint8Array,
  lt: Uint8Array,
  chunk: number,
): AsyncGenerator<[Uint8Array, Uint8Array]> {
  let from = gte;
  for (;;) {
    const rows = await kv.range({ gte: from, lt, limit: chunk });
    yield* rows;
    if (rows.length < chunk) return;
    from = successor(rows[rows.length - 1]![0]);
  }
}

/** The stored strata of each tile level, read in index order as the re-derived tree reaches them. */
class StoredStrata {
  readonly #kv: KeyValueStore;
  readonly #report: (problem: FsckProblem) => void;
  readonly #cursors = new Map<number, AsyncGenerator<[Uint8Array, Uint8Array]>>();
  /** The next stored stratum of each level not yet reached (read ahead by one). */
  readonly #ahead = new Map<number, { index: number; bytes: Uint8Array } | undefined>();
  /** The stratum of each level the walk is in (undefined: missing or damaged, reported). */
  readonly current = new Map<number, { index: number; stratum: Stratum | undefined }>();
  read = 0;

  constructor(kv: KeyValueStore, report: (problem: FsckProblem) => void) {
    this.#kv = kv;
    this.#report = report;
  }

  async #next(level: number): Promise<{ index: number; bytes: Uint8Array } | undefined> {
    let cursor = this.#cursors.get(level);
    if (cursor === undefined) {
      cursor = scan(
        this.#kv,
        Uint8Array.of(TAG.tile, level),
        Uint8Array.of(TAG.tile, level + 1),
        64,
      );
      this.#cursors.set(level, cursor);
    }
    const r = await cursor.next();
    if (r.done) return undefined;
    const [key, bytes] = r.value;
    this.read++;
    return { index: getUint64(key, 2, "tile key"), bytes };
  }

  /** The stored stratum (level, index); indices of one level must be asked for in order. */
  async get(level: number, index: number): Promise<Stratum | undefined> {
    const here = this.current.get(level);
    if (here?.index === index) return here.stratum;
    if (!this.#ahead.has(level)) this.#ahead.set(level, await this.#next(level));
    let ahead = this.#ahead.get(level);
    // Stored strata before the one asked for were never reached: the walk visits every tile in
    // order, so this only happens after a tile key was damaged.
    while (ahead !== undefined && ahead.index < index) {
      this.#report({
        kind: "tile",
        message: `stored tile ${level}/${ahead.index} is out of place (the tree reached tile ${level}/${index})`,
      });
      ahead = await this.#next(level);
    }
    let stratum: Stratum | undefined;
    if (ahead === undefined || ahead.index > index) {
      this.#report({ kind: "tile", message: `tile ${level}/${index} is missing from storage` });
    } else {
      try {
        stratum = Stratum.decode(level, index, ahead.bytes);
      } catch (e) {
        this.#report({
          kind: "tile",
          message: `stored tile ${level}/${index} does not decode: ${(e as Error).message}`,
        });
      }
      ahead = await this.#next(level);
    }
    this.#ahead.set(level, ahead);
    this.current.set(level, { index, stratum });
    return stratum;
  }

  /** Stored strata of `level` past the last one reached (they lie beyond the tree). */
  async *rest(level: number): AsyncGenerator<number> {
    if (!this.#ahead.has(level)) this.#ahead.set(level, await this.#next(level));
    for (let a = this.#ahead.get(level); a !== undefined; a = await this.#next(level)) {
      yield a.index;
    }
    this.#ahead.set(level, undefined);
  }
}

/** Checks one log's storage; never writes. Resolves to a report (problems are not thrown). */
export async function fsck(options: FsckOptions): Promise<FsckReport> {
  const { kv } = options;
  const chunk = options.chunk ?? 256;
  const maxProblems = options.maxProblems ?? 1000;
  const key = parseVerifierKey(options.verifierKey.trim());
  if (key.type !== SIG_TYPE_ED25519) {
    throw new VellumError("BAD_KEY", "the log's verifier key must be an Ed25519 (type 0x01) key");
  }
  const verifiers: [NoteVerifier, NoteVerifier] = [
    verifierFromPublicKey(key.name, key.publicKey, SIG_TYPE_ED25519),
    cosignatureVerifier(key.name, key.publicKey),
  ];

  const problems: FsckProblem[] = [];
  let problemCount = 0;
  const report = (p: FsckProblem) => {
    problemCount++;
    if (problems.length < maxProblems) problems.push(p);
  };
  const strata = new StoredStrata(kv, report);
  let nodes = 0;
  let checkpoints = 0;

  // ---- the stored tree state -------------------------------------------------------------
  let state: TreeState | undefined;
  const stateBytes = await kv.get(STATE_KEY);
  // Under payload dedup (and in logs from before the setting) every entry has a payload index;
  // under key dedup none is written (older entries of a log switched to it may keep theirs).
  const dedupBytes = await kv.get(DEDUP_KEY);
  const payloadIndexed = dedupBytes === undefined || decodeDedup(dedupBytes) === "payload";
  if (stateBytes === undefined) {
    report({ kind: "state", message: "the tree state (key s) is missing" });
  } else {
    try {
      state = decodeState(stateBytes);
    } catch (e) {
      report({ kind: "state", message: `the tree state does not decode: ${(e as Error).message}` });
    }
  }

  // ---- the tree, re-derived: a compact range whose nodes are compared as they complete ----
  /** The compact range of leaves [0, count): its subtrees' hashes, left to right. */
  const hashes: Uint8Array[] = [];
  let count = 0;
  let hashed = 0;

  /** The stored node (level, index), or undefined (a missing tile is reported once). */
  const storedNode = async (level: number, index: number) => {
    const at = nodeAddress(level, index);
    const stratum = await strata.get(at.tileLevel, at.tileIndex);
    if (stratum === undefined) return { hash: undefined, tileMissing: true };
    return { hash: stratum.node(at.row, at.position), tileMissing: false };
  };

  /**
   * A leaf whose hash differs from the tile's level-0 hash, until its parent node tells which of
   * the two is damaged: the stored parent agrees with one of them (or with neither).
   */
  interface Disputed {
    readonly index: number;
    readonly own: Uint8Array;
    readonly stored: Uint8Array;
  }
  /** The disputed leaf among the range's last subtree, if that subtree is a lone leaf. */
  let disputed: Disputed | undefined;
  const settle = (d: Disputed, verdict: "leaf" | "tile" | "unknown") => {
    const tile = tileName(0, d.index);
    report(
      verdict === "tile"
        ? {
            kind: "tile",
            index: d.index,
            message: `${tile}: the level-0 hash of entry ${d.index} is ${short(d.stored)}, the entry hashes to ${short(d.own)} and its parent node agrees with the entry`,
          }
        : {
            kind: "entry",
            index: d.index,
            message: `entry ${d.index}: its stored leaf hashes to ${short(d.own)}, ${tile} holds ${short(d.stored)}`,
          },
    );
  };

  /**
   * Appends leaf `index` whose hash is `leafHash` (undefined: the leaf is missing) and checks
   * every node it completes. Returns whether the leaf agrees with the tile.
   */
  const append = async (index: number, leafHash: Uint8Array | undefined): Promise<boolean> => {
    const stored = await storedNode(0, index);
    nodes++;
    let hash = leafHash;
    let mine: Disputed | undefined;
    if (leafHash === undefined) {
      report({ kind: "entry", index, message: `entry ${index} is missing from storage` });
      hash = stored.hash ?? new Uint8Array(HASH_SIZE);
    } else if (stored.hash === undefined) {
      if (!stored.tileMissing) {
        report({
          kind: "tile",
          index,
          message: `${tileName(0, index)} lacks the level-0 hash of entry ${index}`,
        });
      }
    } else if (!bytesEqual(leafHash, stored.hash)) {
      // The tile's hash goes on up for now: if the leaf is the damaged one, nothing above fails.
      mine = { index, own: leafHash, stored: stored.hash };
      hash = stored.hash;
    }
    let level = 0;
    let at = index;
    // A right child merges with its left sibling, which is the last subtree of the range.
    while (at % 2 === 1) {
      const left = hashes.pop()!;
      level++;
      at = (at - 1) / 2;
      let parent = hashChildren(left, hash!);
      const s = await storedNode(level, at);
      nodes++;
      if (level === 1 && (disputed !== undefined || mine !== undefined)) {
        // Which of the two hashes of a disputed leaf does the stored parent agree with?
        const l = disputed;
        const r = mine;
        disputed = undefined;
        let verdict: "leaf" | "tile" | "unknown" = s.hash === undefined ? "unknown" : "leaf";
        if (s.hash !== undefined && !bytesEqual(parent, s.hash)) {
          const tries = [
            [l?.own ?? left, hash!],
            [left, r?.own ?? hash!],
            [l?.own ?? left, r?.own ?? hash!],
          ] as const;
          const match = tries.find(([a, b]) => bytesEqual(hashChildren(a, b), s.hash!));
          if (match !== undefined) {
            verdict = "tile";
            parent = s.hash;
          } else {
            verdict = "unknown";
          }
        }
        if (l !== undefined) settle(l, verdict);
        if (r !== undefined) settle(r, verdict);
        mine = undefined;
      }
      if (s.hash === undefined) {
        if (!s.tileMissing) {
          report({ kind: "tile", message: `${tileName(level, at)} lacks node ${level}/${at}` });
        }
      } else if (!bytesEqual(parent, s.hash)) {
        report({
          kind: "tile",
          message: `${tileName(level, at)}: node ${level}/${at} is ${short(s.hash)}, the hash of its children is ${short(parent)}`,
        });
      }
      hash = parent;
    }
    if (mine !== undefined) disputed = mine; // a left child: its parent is not complete yet
    hashes.push(hash!);
    count = index + 1;
    return (
      leafHash !== undefined && (stored.hash === undefined || bytesEqual(leafHash, stored.hash))
    );
  };
  const root = () => foldRight(hashes) ?? EMPTY_ROOT;

  // ---- checkpoints: checked when the walk reaches their size ------------------------------
  const cpCursor = scan(kv, CHECKPOINT_RANGE.gte, CHECKPOINT_RANGE.lt, 256);
  let nextCp = await cpCursor.next();
  const openNote = (note: string, what: string) => {
    try {
      const opened = openCheckpoint(note, verifiers[0], [verifiers[1]]);
      if (!opened.signatures.some((s) => s.timestamp !== undefined)) {
        report({
          kind: "checkpoint",
          message: `${what} has no timestamp signature by the log's key`,
        });
      }
      return opened.checkpoint;
    } catch (e) {
      report({
        kind: "checkpoint",
        message: `${what} does not verify with the log's key ${key.name}: ${(e as Error).message}`,
      });
      return undefined;
    }
  };
  let external: { size: number; rootHash: Uint8Array } | undefined;
  if (options.lastPublished !== undefined) {
    external = openNote(options.lastPublished, "DATA/checkpoint");
  }
  const compareRoot = (size: number, rootHash: Uint8Array, what: string) => {
    const derived = root();
    if (!bytesEqual(derived, rootHash)) {
      report({
        kind: "checkpoint",
        message: `${what} has root ${short(rootHash)}, the tree re-derived at size ${size} has ${short(derived)}`,
      });
    }
  };
  /** Checks the checkpoints of size `count` (the walk has just appended `count` leaves). */
  const checkpointsAt = async () => {
    while (!nextCp.done && getUint64(nextCp.value[0], 1, "checkpoint key") <= count) {
      const [cpKey, value] = nextCp.value;
      const size = getUint64(cpKey, 1, "checkpoint key");
      checkpoints++;
      const cp = openNote(new TextDecoder().decode(value), `checkpoint at size ${size}`);
      if (cp !== undefined && cp.size !== size) {
        report({
          kind: "checkpoint",
          message: `checkpoint stored under size ${size} is for size ${cp.size}`,
        });
      } else if (cp !== undefined) {
        compareRoot(size, cp.rootHash, `checkpoint at size ${size}`);
      }
      nextCp = await cpCursor.next();
    }
    if (external?.size === count) compareRoot(count, external.rootHash, "DATA/checkpoint");
  };

  // ---- the entries, in key order -----------------------------------------------------------
  const limit = state?.size ?? Number.MAX_SAFE_INTEGER;
  const lookups: { index: number; id: Uint8Array; leafHash: Uint8Array; payload: Uint8Array }[] =
    [];
  let beyond = 0;
  const checkLookups = async () => {
    if (lookups.length === 0) return;
    const per = payloadIndexed ? 3 : 2;
    const keys = lookups.flatMap((l) => [
      idKey(l.id),
      leafHashKey(l.leafHash),
      ...(payloadIndexed ? [payloadKey(sha256(l.payload))] : []),
    ]);
    const found = await kv.getMany(keys);
    lookups.forEach((l, i) => {
      const names = [`id ${formatUuid(l.id)}`, `leaf hash ${short(l.leafHash)}`, "payload hash"];
      for (let k = 0; k < per; k++) {
        const v = found[per * i + k];
        if (v === undefined || !bytesEqual(v, encodeIndex(l.index))) {
          report({
            kind: "index",
            index: l.index,
            message: `the ${["id", "leaf-hash", "payload"][k]} index ${v === undefined ? "lacks" : `maps to ${v.length === 8 ? decodeIndex(v) : "a damaged value"} instead of`} entry ${l.index} (${names[k]})`,
          });
        }
      }
    });
    lookups.length = 0;
  };

  await checkpointsAt();
  let lastStamp: { index: number; timestamp: number } | undefined;
  for await (const [entryKey, leaf] of scan(
    kv,
    Uint8Array.of(TAG.entry),
    Uint8Array.of(TAG.entry + 1),
    chunk,
  )) {
    if (entryKey.length !== 9) {
      report({ kind: "entry", message: `an entry key of ${entryKey.length} bytes is damaged` });
      continue;
    }
    const index = getUint64(entryKey, 1, "entry key");
    if (index >= limit) {
      if (beyond++ < 10) {
        report({
          kind: "entry",
          index,
          message: `entry ${index} is stored beyond the tree's size ${limit}`,
        });
      }
      continue;
    }
    while (count < index) {
      await append(count, undefined);
      await checkpointsAt();
    }
    const leafHash = hashLeaf(leaf);
    hashed++;
    if (await append(index, leafHash)) {
      try {
        const { id, timestamp, payload } = decodeLeaf(leaf);
        lookups.push({ index, id, leafHash, payload });
        // Timestamps never decrease with the index (ids.ts): what makes a time window an index
        // range, which the audit trail's completeness proofs rest on.
        if (lastStamp !== undefined && timestamp < lastStamp.timestamp) {
          report({
            kind: "entry",
            index,
            message: `entry ${index} has timestamp ${timestamp}, before entry ${lastStamp.index}'s ${lastStamp.timestamp}: timestamps must never decrease`,
          });
        }
        lastStamp = { index, timestamp };
      } catch (e) {
        report({
          kind: "entry",
          index,
          message: `entry ${index} does not decode: ${(e as Error).message}`,
        });
      }
    }
    if (lookups.length >= chunk) await checkLookups();
    await checkpointsAt();
    if (index % chunk === chunk - 1) {
      options.onProgress?.({ phase: "entries", done: count, total: state?.size });
    }
  }
  if (beyond > 10) {
    report({
      kind: "entry",
      message: `${beyond - 10} more entries are stored beyond the tree's size`,
    });
  }
  while (state !== undefined && count < state.size) {
    await append(count, undefined);
    await checkpointsAt();
  }
  // The last leaf of a tree of odd size has no parent to settle a dispute.
  if (disputed !== undefined) settle(disputed, "unknown");
  await checkLookups();
  const size = state?.size ?? count;

  // Checkpoints beyond the tree: their signatures are still checked.
  while (!nextCp.done) {
    const cpSize = getUint64(nextCp.value[0], 1, "checkpoint key");
    checkpoints++;
    openNote(new TextDecoder().decode(nextCp.value[1]), `checkpoint at size ${cpSize}`);
    report({
      kind: "checkpoint",
      message: `checkpoint at size ${cpSize} is beyond the stored tree (size ${size}): entries were lost`,
    });
    nextCp = await cpCursor.next();
  }
  if (external !== undefined && external.size > size) {
    report({
      kind: "checkpoint",
      message: `DATA/checkpoint has size ${external.size} but storage holds a tree of ${size}: data was lost or rolled back`,
    });
  }

  // ---- the stored tree state and the edge of every tile level -------------------------------
  if (state !== undefined) {
    state.compact.forEach((h, i) => {
      if (hashes[i] === undefined || !bytesEqual(h, hashes[i]!)) {
        report({
          kind: "state",
          message: `the tree state's compact range hash ${i} is ${short(h)}, the re-derived tree's is ${short(hashes[i])}`,
        });
      }
    });
  }
  let topLevel = -1;
  for (let level = 0; level * TILE_HEIGHT <= 53 && TILE_WIDTH ** level <= size; level++) {
    topLevel = level;
    const width = partialTileWidth(size, level);
    const edge = Math.floor(size / TILE_WIDTH ** (level + 1));
    const here = strata.current.get(level);
    if (width > 0 && here?.index === edge && here.stratum !== undefined) {
      if (here.stratum.width !== width) {
        report({
          kind: "tile",
          message: `edge tile ${level}/${edge} holds ${here.stratum.width} hashes, the tree of size ${size} has ${width}`,
        });
      }
    }
    for await (const index of strata.rest(level)) {
      report({
        kind: "tile",
        message: `stored tile ${level}/${index} lies beyond the tree (size ${size})`,
      });
    }
  }
  for await (const [tileKey] of scan(
    kv,
    Uint8Array.of(TAG.tile, topLevel + 1),
    Uint8Array.of(TAG.tile + 1),
    64,
  )) {
    report({
      kind: "tile",
      message: `stored tile ${tileKey[1]}/${tileKey.length === 10 ? getUint64(tileKey, 2) : "?"} lies beyond the tree (size ${size})`,
    });
  }

  // ---- the lookup indexes by count: one key per entry, none beyond the tree ------------------
  const indexes = { id: 0, leafHash: 0, payload: 0, idempotencyKey: 0 };
  const counted: [keyof typeof indexes, number, string, boolean][] = [
    ["id", TAG.id, "id", true],
    ["leafHash", TAG.leaf, "leaf-hash", true],
    ["payload", TAG.payload, "payload", payloadIndexed],
    ["idempotencyKey", TAG.idem, "idempotency-key", false],
  ];
  for (const [field, tag, name, onePerEntry] of counted) {
    let n = 0;
    let outside = 0;
    for await (const [, value] of scan(kv, Uint8Array.of(tag), Uint8Array.of(tag + 1), 4096)) {
      n++;
      if (value.length !== 8 || decodeIndex(value) >= size) outside++;
      if (n % 65536 === 0) options.onProgress?.({ phase: "indexes", done: n, total: size });
    }
    indexes[field] = n;
    if (outside > 0) {
      report({
        kind: "index",
        message: `the ${name} index holds ${outside} key(s) pointing beyond the tree (size ${size}) or damaged`,
      });
    }
    if (onePerEntry && n !== size) {
      report({
        kind: "index",
        message: `the ${name} index holds ${n} keys for a tree of ${size} entries`,
      });
    }
  }

  return {
    origin: key.name,
    size: state?.size,
    entries: hashed,
    nodes,
    tiles: strata.read,
    checkpoints,
    lastPublished: external?.size,
    indexes,
    problemCount,
    problems,
    clean: problemCount === 0,
  };
}
