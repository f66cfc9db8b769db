/**
 * @module
 * A monitor for any C2SP tlog-tiles log: it follows the log's checkpoints and downloads every
 * entry, so that everything the log has signed is checked, not only what proofs touch.
 * Pure: no node:* imports; the only I/O is the TileReader's `fetch`.
 *
 * What one `update()` proves, for the log's latest checkpoint C (size n) and the last verified
 * state S (size m, the compact range of the tree of size m, and the checkpoint that signed it):
 * 1. C is signed by the log key (and, given a tlog-policy, cosigned by a witness quorum).
 * 2. m = n: C's root equals S's root; else the log signed two roots for one size (INCONSISTENT).
 * 3. m < n, quick check first (fail fast, O(log n) tiles): the root of the first m leaves that
 *    the log's tiles for size n imply equals S's root, and the consistency proof built from
 *    those tiles verifies against C's root. If the tiles imply another old root AND verify
 *    against C's root, the log signed two inconsistent trees: INCONSISTENT, with the proof as
 *    evidence anyone can re-check ({@link verifyEvidence}). Any other failure is PROOF_MISMATCH.
 * 4. Then the real check, independent of anything the server computed: every entry bundle and
 *    level-0 tile from leaf m to n is downloaded; each entry's RFC 6962 leaf hash must equal the
 *    hash the tile holds for it; the leaf hashes of m..n-1 extend S's compact range, and the
 *    resulting root must equal C's root. Extending the saved range IS the consistency check
 *    between S and C: C's tree then provably has S's tree as its prefix. Completed nodes at
 *    heights 8, 16, ... are also compared with the log's upper tiles, so proofs served from its
 *    tiles are right too. Any mismatch is PROOF_MISMATCH.
 * A checkpoint C smaller than S: if the log still serves S's tiles, the root of S's first |C|
 * leaves (bound to S's root by a consistency proof built from them) tells a stale C (the same
 * root: STATE_MISMATCH, no evidence) from a fork (another root: INCONSISTENT, with evidence);
 * without them it cannot tell (STATE_MISMATCH: a rollback or a stale cache).
 *
 * On INCONSISTENT and PROOF_MISMATCH the thrown {@link MonitorError} carries an {@link Evidence}
 * object: both signed checkpoints, what mismatched, and the offending tile or bundle (path,
 * SHA-256, bytes when small). Entries are opaque; Vellum leaves (src/core/entry.ts) can be
 * decoded on the way to report ids. Indices and sizes are safe integers, never bit-twiddled.
 *
 * Over 400 lines: one streaming check of every entry and checkpoint whose steps share the running
 * compact range and state; the evidence format and its re-check are monitor-evidence.ts.
 */
import { base64DecodeFixed, base64Encode, bytesEqual, hexEncode } from "../core/bytes.js";
import { type Checkpoint, openCheckpoint } from "../core/checkpoint.js";
import { CompactRange, foldRight } from "../core/compact.js";
import { cosignatureVerifier } from "../core/cosignature.js";
import { sha256 } from "../core/crypto.js";
import { decodeLeaf, formatUuid } from "../core/entry.js";
import { check, VellumError } from "../core/errors.js";
import {
  type NoteVerifier,
  parseVerifierKey,
  SIG_TYPE_ED25519,
  verifierFromKey,
} from "../core/keys.js";
import { checkSize, rangeNodes } from "../core/merkle.js";
import { type Policy, parsePolicy, verifyQuorum } from "../core/policy.js";
import { EMPTY_ROOT, hashLeaf } from "../core/rfc6962.js";
import { TILE_HEIGHT, TILE_WIDTH } from "../core/tiles.js";
import { verifyConsistency } from "../core/verify.js";
import {
  EMBED_LIMIT,
  EVIDENCE_FORMAT,
  type Evidence,
  type EvidenceCheckpoint,
  type EvidenceResource,
  MonitorError,
} from "./monitor-evidence.js";
import {
  type EntryBundleRead,
  type Fetched,
  type HashTileRead,
  TileDataError,
  type TileReader,
  tileWidthAt,
} from "./tiles.js";

/** What a monitor remembers between runs: enough to extend the tree and to hold the log to it. */
export interface MonitorState {
  /** The verified tree size. */
  readonly size: number;
  /** Base64 hashes of the compact range [0, size): `rangeNodes(0, size)`, left to right. */
  readonly hashes: readonly string[];
  /** The signed checkpoint note that verified at `size` (null before the first one). */
  readonly checkpoint: string | null;
  /**
   * The timestamp of entry size−1 when it is a Vellum leaf: the next entry's may not be earlier
   * (time order, spec/audit.md). Absent in states saved before the check existed.
   */
  readonly lastTimestamp?: number;
}

/** The empty state: follow the log from size 0. */
export const INITIAL_STATE: MonitorState = { size: 0, hashes: [], checkpoint: null };

export interface MonitorEntry {
  readonly index: number;
  /** The entry's bytes as in the bundle (for Vellum, the CBOR leaf). */
  readonly data: Uint8Array;
  readonly leafHash: Uint8Array;
  /**
   * With `decodeLeaves`, for entries that are Vellum leaves (either version): the UUIDv7, the
   * timestamp and, for version 2, the submitter (the submitting token's id).
   */
  readonly vellum?: {
    readonly id: string;
    readonly timestamp: number;
    readonly submitter?: string;
  };
}

export interface MonitorProgress {
  /** The verified size this catch-up started from. */
  readonly from: number;
  /** The size of the checkpoint being caught up with. */
  readonly to: number;
  /** Entries read and hashed so far: the tree built so far has this size. */
  readonly done: number;
  readonly elapsedMs: number;
  readonly entriesPerSecond: number;
  /** Seconds left at the current rate (0 when done). */
  readonly etaSeconds: number;
}

export interface MonitorUpdate {
  readonly origin: string;
  readonly previousSize: number;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The verified checkpoint note. */
  readonly checkpoint: string;
  readonly newEntries: number;
  readonly elapsedMs: number;
  readonly entriesPerSecond: number;
  /** POSIX seconds of a Vellum log's timestamp signature (same key, type 0x04), if present. */
  readonly timestamp?: number;
}

export interface MonitorOptions {
  readonly reader: TileReader;
  /** The log's verifier key (`<name>+<key id>+<key>`, type 0x01); its name is the origin. */
  readonly logKey: string;
  /** A C2SP tlog-policy (text or parsed): checkpoints must also meet its witness quorum. */
  readonly policy?: Policy | string;
  /** Resume from this state (default: follow from size 0). Checked against its checkpoint. */
  readonly state?: MonitorState;
  /** Entry bundles (each with its level-0 tile) fetched in parallel (default 8). */
  readonly concurrency?: number;
  /** Also compare the log's tiles above level 0 with the rebuilt tree (default true). */
  readonly checkUpperTiles?: boolean;
  /** Decode Vellum leaves for `onEntry` (entries that are not Vellum leaves stay opaque). */
  readonly decodeLeaves?: boolean;
  /**
   * Check that Vellum leaves' timestamps never decrease with the index, what makes a time window
   * an index range (default true; entries that are not Vellum leaves are skipped). An earlier
   * timestamp in a signed tree is INCONSISTENT evidence.
   */
  readonly checkTimeOrder?: boolean;
  /** Called for each new entry, in index order, before its checkpoint is verified. */
  readonly onEntry?: (entry: MonitorEntry) => void;
  readonly onProgress?: (progress: MonitorProgress) => void;
  /** Milliseconds since the epoch (for evidence timestamps). */
  readonly now?: () => number;
}

// ---------------------------------------------------------------------------------------------
// State

interface Verified {
  readonly note: string;
  readonly checkpoint: Checkpoint;
  readonly timestamp: number | undefined;
}

function decodeState(state: MonitorState): CompactRange {
  check(
    typeof state === "object" && state !== null,
    "MALFORMED",
    "monitor state must be an object",
  );
  checkSize(state.size, "state.size");
  check(Array.isArray(state.hashes), "MALFORMED", "state.hashes must be an array");
  const hashes = state.hashes.map((h, i) => base64DecodeFixed(h, 32, `state.hashes[${i}]`));
  return CompactRange.fromHashes(0, state.size, hashes);
}

/** Follows one log. Not re-entrant: await one `update()` before starting the next. */
export class Monitor {
  readonly origin: string;
  readonly #reader: TileReader;
  readonly #logKey: string;
  readonly #logVerifier: NoteVerifier;
  readonly #timestampVerifier: NoteVerifier;
  readonly #policy: Policy | undefined;
  readonly #options: MonitorOptions;
  readonly #concurrency: number;
  #range: CompactRange;
  /** Timestamp of the last verified entry, if a Vellum leaf (time order). */
  #lastTimestamp: number | undefined;
  #verified: Verified | undefined;
  #busy = false;

  constructor(options: MonitorOptions) {
    this.#options = options;
    this.#reader = options.reader;
    const key = parseVerifierKey(options.logKey);
    check(key.type === SIG_TYPE_ED25519, "BAD_KEY", "the log key must be a type 0x01 note key");
    this.#logKey = options.logKey;
    this.origin = key.name;
    this.#logVerifier = verifierFromKey(options.logKey);
    // A Vellum log also signs a timestamp with the same key as a tlog-cosignature (type 0x04).
    this.#timestampVerifier = cosignatureVerifier(key.name, key.publicKey);
    this.#policy =
      typeof options.policy === "string" ? parsePolicy(options.policy) : options.policy;
    if (this.#policy !== undefined && this.#policy.logs.length > 0) {
      check(
        this.#policy.logs.some(
          (l) => l.key.name === key.name && bytesEqual(l.key.publicKey, key.publicKey),
        ),
        "BAD_KEY",
        `the policy does not list the log key ${key.name}`,
      );
    }
    this.#concurrency = options.concurrency ?? 8;
    check(
      Number.isInteger(this.#concurrency) && this.#concurrency >= 1,
      "OUT_OF_RANGE",
      "concurrency must be an integer >= 1",
    );

    const state = options.state ?? INITIAL_STATE;
    this.#range = decodeState(state);
    this.#lastTimestamp = state.lastTimestamp;
    if (state.checkpoint === null) {
      check(
        state.size === 0,
        "STATE_MISMATCH",
        "a monitor state above size 0 needs its checkpoint",
      );
    } else {
      const v = this.#open(state.checkpoint);
      check(
        v.checkpoint.size === state.size && bytesEqual(v.checkpoint.rootHash, this.#range.root()),
        "STATE_MISMATCH",
        `the saved compact range (size ${state.size}) does not match its saved checkpoint (size ${v.checkpoint.size})`,
      );
      this.#verified = v;
    }
    this.#reader.observeSize(state.size);
  }

  /** The state to save (JSON-safe); pass it back as `state` to resume. */
  get state(): MonitorState {
    return {
      size: this.#range.end,
      hashes: this.#range.hashes().map(base64Encode),
      checkpoint: this.#verified?.note ?? null,
      ...(this.#lastTimestamp === undefined ? {} : { lastTimestamp: this.#lastTimestamp }),
    };
  }

  get size(): number {
    return this.#range.end;
  }

  /** Verifies a checkpoint note's signatures (log key, Vellum timestamp, policy quorum). */
  #open(note: string): Verified {
    const opened = openCheckpoint(note, this.#logVerifier, [this.#timestampVerifier]);
    if (this.#policy !== undefined) verifyQuorum(this.#policy, note);
    const stamp = opened.signatures.find((s) => s.verifier === this.#timestampVerifier);
    return { note, checkpoint: opened.checkpoint, timestamp: stamp?.timestamp };
  }

  /**
   * Fetches the latest checkpoint, verifies it and everything between the saved state and it,
   * then adopts it. Throws MonitorError (INCONSISTENT, PROOF_MISMATCH) with evidence, or any
   * VellumError of the reader (NOT_FOUND, NETWORK, UNAVAILABLE, UNAUTHENTICATED, FORBIDDEN) or
   * of verification (BAD_SIGNATURE, NO_KNOWN_SIGNATURE, QUORUM_NOT_MET, STATE_MISMATCH); the
   * state then stays as it was.
   */
  async update(): Promise<MonitorUpdate> {
    check(!this.#busy, "CONFLICT", "an update is already running");
    this.#busy = true;
    try {
      return await this.#update();
    } finally {
      this.#busy = false;
    }
  }

  async #update(): Promise<MonitorUpdate> {
    const started = performance.now();
    const v = this.#open(await this.#reader.checkpoint());
    const cp = v.checkpoint;
    const from = this.#range.end;
    if (cp.size < from) await this.#checkSmaller(v);
    this.#reader.observeSize(cp.size);
    let range = this.#range;
    if (cp.size === from) {
      if (!bytesEqual(range.root(), cp.rootHash)) {
        this.#fail(v, {
          code: from === 0 ? "PROOF_MISMATCH" : "INCONSISTENT",
          reason:
            from === 0
              ? "a checkpoint of size 0 whose root is not the empty tree's"
              : `the log signed two different roots for tree size ${from}`,
          expected: base64Encode(range.root()),
          actual: base64Encode(cp.rootHash),
        });
      }
    } else {
      if (from > 0) await this.#checkConsistencyFromTiles(v);
      range = await this.#catchUp(v);
    }
    this.#range = range;
    this.#verified = v;
    const elapsedMs = performance.now() - started;
    const newEntries = cp.size - from;
    return {
      origin: this.origin,
      previousSize: from,
      size: cp.size,
      rootHash: cp.rootHash,
      checkpoint: v.note,
      newEntries,
      elapsedMs,
      entriesPerSecond: elapsedMs > 0 ? (newEntries * 1000) / elapsedMs : 0,
      ...(v.timestamp === undefined ? {} : { timestamp: v.timestamp }),
    };
  }

  /**
   * The log shows a checkpoint C smaller than the verified one S. If the log still serves the
   * tiles of S's tree, they give the root of S's first C.size leaves together with a consistency
   * proof to S's root (so the root is bound to what S signed): the same root as C's means C is
   * merely stale (STATE_MISMATCH, no evidence); another root means the log signed two histories
   * (INCONSISTENT, with the proof as evidence). Without those tiles (a log restored from an old
   * backup no longer has them) it cannot tell: STATE_MISMATCH.
   */
  async #checkSmaller(v: Verified): Promise<never> {
    const small = v.checkpoint.size;
    const big = this.#range.end;
    const bigRoot = this.#range.root();
    let impliedSmall: Uint8Array | undefined;
    let proof: Uint8Array[] = [];
    try {
      impliedSmall =
        foldRight(await this.#reader.nodeHashes(rangeNodes(0, small), big)) ?? EMPTY_ROOT;
      proof = await this.#reader.consistencyProof(small, big);
      verifyConsistency(small, big, proof, impliedSmall, bigRoot);
    } catch {
      impliedSmall = undefined; // the tiles of the verified tree are gone or wrong: cannot tell
    }
    if (
      impliedSmall !== undefined &&
      small > 0 &&
      !bytesEqual(impliedSmall, v.checkpoint.rootHash)
    ) {
      this.#fail(v, {
        code: "INCONSISTENT",
        reason: `the log's checkpoint of size ${small} is not a prefix of the one of size ${big} it signed before: their first ${small} leaves have another root`,
        expected: base64Encode(impliedSmall),
        actual: base64Encode(v.checkpoint.rootHash),
        consistency: {
          from: small,
          to: big,
          oldRoot: base64Encode(impliedSmall),
          proof: proof.map(base64Encode),
        },
      });
    }
    throw new VellumError(
      "STATE_MISMATCH",
      impliedSmall === undefined
        ? `the log's checkpoint is for size ${small}, below the size ${big} this monitor verified, and the log no longer serves that tree's tiles: a rollback (restored from an old backup?) or a stale cache`
        : `the log's checkpoint is for size ${small}, below the size ${big} this monitor verified, but consistent with it: a stale cache or a rollback, not a fork`,
    );
  }

  /**
   * Step 3: the old root the new tree's tiles imply, and the consistency proof from them. Fast,
   * and when the log forked, evidence a third party can check without downloading anything.
   */
  async #checkConsistencyFromTiles(v: Verified): Promise<void> {
    const from = this.#range.end;
    const to = v.checkpoint.size;
    const oldRoot = this.#range.root();
    const reader = this.#reader;
    let impliedOld: Uint8Array;
    let proof: Uint8Array[];
    try {
      impliedOld = foldRight(await reader.nodeHashes(rangeNodes(0, from), to))!;
      proof = await reader.consistencyProof(from, to);
    } catch (e) {
      this.#badTile(v, to, e);
    }
    const consistency = {
      from,
      to,
      oldRoot: base64Encode(impliedOld),
      proof: proof.map(base64Encode),
    };
    let provesNew = true;
    try {
      verifyConsistency(from, to, proof, impliedOld, v.checkpoint.rootHash);
    } catch {
      provesNew = false;
    }
    if (provesNew && !bytesEqual(impliedOld, oldRoot)) {
      this.#fail(v, {
        code: "INCONSISTENT",
        reason: `the log's checkpoint of size ${to} does not extend the one of size ${from} it signed before: its tree's first ${from} leaves have another root`,
        expected: base64Encode(oldRoot),
        actual: consistency.oldRoot,
        consistency,
      });
    }
    if (!provesNew || !bytesEqual(impliedOld, oldRoot)) {
      this.#fail(v, {
        code: "PROOF_MISMATCH",
        reason: `the log's tiles for size ${to} do not prove its checkpoint consistent with size ${from}`,
        expected: base64Encode(oldRoot),
        actual: consistency.oldRoot,
        consistency,
      });
    }
  }

  /** Step 4: download, hash and append every new entry; compare root and upper tiles. */
  async #catchUp(v: Verified): Promise<CompactRange> {
    const from = this.#range.end;
    const to = v.checkpoint.size;
    const range = this.#range.clone();
    const reader = this.#reader;
    const { onEntry, onProgress, decodeLeaves } = this.#options;
    const checkUpper = this.#options.checkUpperTiles !== false;
    // Completed nodes at heights 8, 16, ...: tile level → node index → hash.
    const upper = new Map<number, Map<number, Uint8Array>>();
    const visit = (height: number, index: number, hash: Uint8Array) => {
      if (height === 0 || height % TILE_HEIGHT !== 0) return;
      const level = height / TILE_HEIGHT;
      let nodes = upper.get(level);
      if (nodes === undefined) {
        nodes = new Map();
        upper.set(level, nodes);
      }
      nodes.set(index, hash);
    };

    const firstBundle = Math.floor(from / TILE_WIDTH);
    const endBundle = Math.ceil(to / TILE_WIDTH);
    type Chunk = [EntryBundleRead, HashTileRead];
    const inFlight: Promise<Chunk>[] = [];
    let next = firstBundle;
    const fill = () => {
      while (next < endBundle && inFlight.length < this.#concurrency) {
        const b = next++;
        const p = Promise.all([
          reader.entryBundle(b, to),
          reader.hashTile(0, b, to, { cache: false }),
        ]);
        p.catch(() => {}); // awaited in order below; this keeps early rejections handled
        inFlight.push(p);
      }
    };

    const started = performance.now();
    let lastProgress = 0;
    const order = new TimeOrder(this.#options.checkTimeOrder !== false, from, this.#lastTimestamp);
    for (let b = firstBundle; b < endBundle; b++) {
      fill();
      let bundle: EntryBundleRead;
      let tile: HashTileRead;
      try {
        [bundle, tile] = await inFlight.shift()!;
      } catch (e) {
        if (e instanceof TileDataError) {
          this.#fail(v, {
            code: "PROOF_MISMATCH",
            reason: `the log serves malformed data for its checkpoint of size ${to}: ${e.message}`,
            resources: [this.#resource(e.resource)],
          });
        }
        throw e;
      }
      fill();
      const width = tileWidthAt(0, b, to);
      const base = b * TILE_WIDTH;
      for (let i = 0; i < width; i++) {
        const index = base + i;
        const data = bundle.entries[i]!;
        const leafHash = hashLeaf(data);
        if (!bytesEqual(leafHash, tile.hashes[i]!)) {
          this.#fail(v, {
            code: "PROOF_MISMATCH",
            reason: `entry ${index} in ${bundle.path} does not hash to the leaf hash in ${tile.path}`,
            index,
            level: 0,
            expected: base64Encode(tile.hashes[i]!),
            actual: base64Encode(leafHash),
            resources: [this.#resource(bundle), this.#resource(tile)],
          });
        }
        order.see(index, data, bundle);
        if (index < from) continue;
        range.append(leafHash, checkUpper ? visit : undefined);
        if (onEntry !== undefined) onEntry(entryOf(index, data, leafHash, decodeLeaves === true));
      }
      if (onProgress !== undefined) {
        const now = performance.now();
        if (now - lastProgress >= 100 || b === endBundle - 1) {
          lastProgress = now;
          const elapsedMs = now - started;
          const done = range.end;
          const rate = elapsedMs > 0 ? ((done - from) * 1000) / elapsedMs : 0;
          onProgress({
            from,
            to,
            done,
            elapsedMs,
            entriesPerSecond: rate,
            etaSeconds: rate > 0 ? (to - done) / rate : 0,
          });
        }
      }
    }

    const root = range.root();
    if (!bytesEqual(root, v.checkpoint.rootHash)) {
      this.#fail(v, {
        code: "PROOF_MISMATCH",
        reason:
          from === 0
            ? `the log's ${to} entries do not hash to the root of its checkpoint`
            : `the log's entries ${from}..${to - 1}, appended to the verified tree of size ${from}, do not hash to the root of its checkpoint of size ${to}`,
        expected: base64Encode(v.checkpoint.rootHash),
        actual: base64Encode(root),
      });
    }
    if (checkUpper) await this.#checkUpperTiles(v, upper);
    // Only now: the entries are those the checkpoint signs, so an order broken among them is the
    // log's doing, not a forged bundle's.
    const broken = order.broken;
    if (broken !== undefined) {
      this.#fail(v, {
        code: "INCONSISTENT",
        reason: `entry ${broken.index} has timestamp ${broken.timestamp}, before entry ${broken.index - 1}'s ${broken.previous}: a Vellum log's timestamps never decrease with the index (spec/audit.md, "Time windows")`,
        index: broken.index,
        resources: [this.#resource(broken.bundle)],
      });
    }
    this.#lastTimestamp = order.last;
    return range;
  }

  /** Compares the rebuilt nodes at heights 8·L with what the level-L tiles of the log hold. */
  /** Rethrows `e`, as PROOF_MISMATCH evidence when a hash tile of the tree of `to` is malformed. */
  #badTile(v: Verified, to: number, e: unknown): never {
    if (e instanceof TileDataError) {
      this.#fail(v, {
        code: "PROOF_MISMATCH",
        reason: `a hash tile of the tree of size ${to} is malformed: ${e.message}`,
        resources: [this.#resource(e.resource)],
      });
    }
    throw e;
  }

  async #checkUpperTiles(v: Verified, upper: Map<number, Map<number, Uint8Array>>): Promise<void> {
    const to = v.checkpoint.size;
    for (const [level, nodes] of [...upper].sort((a, b) => a[0] - b[0])) {
      const tiles = new Set<number>();
      for (const index of nodes.keys()) tiles.add(Math.floor(index / TILE_WIDTH));
      const reads = await Promise.all(
        [...tiles].map(async (t) => {
          try {
            return await this.#reader.hashTile(level, t, to);
          } catch (e) {
            this.#badTile(v, to, e);
          }
        }),
      );
      for (const read of reads) {
        const first = read.tile.index * TILE_WIDTH;
        read.hashes.forEach((served, i) => {
          const built = nodes.get(first + i);
          if (built === undefined || bytesEqual(built, served)) return;
          this.#fail(v, {
            code: "PROOF_MISMATCH",
            reason: `${read.path} holds a wrong hash for node (height ${level * TILE_HEIGHT}, index ${first + i}) of the tree of size ${to}`,
            index: first + i,
            level: level * TILE_HEIGHT,
            expected: base64Encode(built),
            actual: base64Encode(served),
            resources: [this.#resource(read)],
          });
        });
      }
    }
  }

  #resource(r: Fetched): EvidenceResource {
    return {
      url: `${this.#reader.url}${r.path}`,
      length: r.data.length,
      sha256: hexEncode(sha256(r.data)),
      ...(r.data.length <= EMBED_LIMIT ? { data: base64Encode(r.data) } : {}),
    };
  }

  #fail(
    v: Verified,
    details: Pick<Evidence, "code" | "reason"> &
      Partial<
        Pick<Evidence, "index" | "level" | "expected" | "actual" | "resources" | "consistency">
      >,
  ): never {
    const asEvidence = (x: Verified): EvidenceCheckpoint => ({
      size: x.checkpoint.size,
      rootHash: base64Encode(x.checkpoint.rootHash),
      note: x.note,
    });
    const now = this.#options.now ?? Date.now;
    const { code, reason, ...rest } = details;
    throw new MonitorError({
      format: EVIDENCE_FORMAT,
      code,
      reason,
      origin: this.origin,
      logKey: this.#logKey,
      url: this.#reader.url,
      detectedAt: new Date(now()).toISOString(),
      previous: this.#verified === undefined ? null : asEvidence(this.#verified),
      checkpoint: asEvidence(v),
      ...rest,
    });
  }
}

/**
 * Follows Vellum leaves' timestamps through a catch-up: remembers the first entry whose timestamp
 * is earlier than its predecessor's. Entries that are not Vellum leaves break the chain (a log
 * of other entries has no time order to keep).
 */
class TimeOrder {
  last: number | undefined;
  broken:
    | { index: number; timestamp: number; previous: number; bundle: EntryBundleRead }
    | undefined;
  readonly #on: boolean;
  /** The index `last` belongs to (entry from−1 when resumed from a saved state). */
  #lastIndex: number;

  constructor(on: boolean, from: number, last: number | undefined) {
    this.#on = on;
    this.last = last;
    this.#lastIndex = from - 1;
  }

  see(index: number, data: Uint8Array, bundle: EntryBundleRead): void {
    if (!this.#on || index <= this.#lastIndex - 1) return;
    let timestamp: number;
    try {
      timestamp = decodeLeaf(data).timestamp;
    } catch {
      this.last = undefined;
      this.#lastIndex = index;
      return;
    }
    if (index === this.#lastIndex) {
      this.last ??= timestamp; // entry from−1, re-read from its partial bundle
      return;
    }
    if (this.last !== undefined && timestamp < this.last && this.broken === undefined) {
      this.broken = { index, timestamp, previous: this.last, bundle };
    }
    this.last = timestamp;
    this.#lastIndex = index;
  }
}

function entryOf(
  index: number,
  data: Uint8Array,
  leafHash: Uint8Array,
  decode: boolean,
): MonitorEntry {
  if (!decode) return { index, data, leafHash };
  try {
    const leaf = decodeLeaf(data);
    return {
      index,
      data,
      leafHash,
      vellum:
        leaf.submitter === undefined
          ? { id: formatUuid(leaf.id), timestamp: leaf.timestamp }
          : { id: formatUuid(leaf.id), timestamp: leaf.timestamp, submitter: leaf.submitter },
    };
  } catch {
    return { index, data, leafHash };
  }
}
