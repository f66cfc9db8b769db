/**
 * @module
 * `vellum monitor --index`: holds a Vellum server's verifiable index to the log. It reads every
 * revision of the index log (`/index/`, verified against the index checkpoint signed with the
 * log's key under `<origin>/index`) and every entry of the main log (verified against its
 * checkpoint), replays the published key function (src/core/event-keys.ts) over the entries, and
 * checks each revision: its log root is the main tree's root at its size, and its map root is the
 * map the replay makes there. A revision that is not is INCONSISTENT evidence (the index log
 * signed a commitment the log contradicts), written like a split view.
 *
 * The replay is kept in memory and resumes where the last poll stopped; each process starts it
 * from the beginning of both logs.
 */

import { EVIDENCE_FORMAT, type Evidence, MonitorError } from "../client/monitor-evidence.js";
import type { TileReader } from "../client/tiles.js";
import { base64Encode } from "../core/bytes.js";
import { openCheckpoint } from "../core/checkpoint.js";
import { CompactRange } from "../core/compact.js";
import { decodeLeaf } from "../core/entry.js";
import { check } from "../core/errors.js";
import { type IndexKey, indexKeysOfPayload } from "../core/event-keys.js";
import {
  decodeRevision,
  type IndexRevision,
  indexLogVerifierKey,
  mapKeyOf,
  mapValueOf,
} from "../core/index-answer.js";
import { verifierFromKey } from "../core/keys.js";
import { listLeaf } from "../core/list-run.js";
import { hashLeaf } from "../core/rfc6962.js";
import { EMPTY_HASH } from "../core/smt.js";
import { TILE_WIDTH } from "../core/tiles.js";
import { verifyConsistency } from "../core/verify.js";
import { MapStore } from "../indexing/map-store.js";
import { MemoryDatabase } from "../storage/memory.js";
import type { WriteOp } from "../storage/types.js";

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

interface KeyState {
  readonly key: IndexKey;
  readonly mapKey: Uint8Array;
  readonly range: CompactRange;
  last: number;
}

export interface IndexAuditResult {
  /** Revisions checked in all (the index log's size). */
  readonly revisions: number;
  /** The main log's entries replayed (up to the latest revision). */
  readonly entries: number;
  /** Distinct keys seen. */
  readonly keys: number;
  /** The log size the latest revision covers. */
  readonly indexedSize: number;
}

export class IndexAudit {
  readonly #main: TileReader;
  readonly #index: TileReader;
  readonly #logKey: string;
  readonly #indexKey: string;
  readonly #mainRange = CompactRange.empty();
  readonly #indexRange = CompactRange.empty();
  readonly #keys = new Map<string, KeyState>();
  readonly #changed = new Set<KeyState>();
  readonly #kv = new MemoryDatabase().namespace("index-audit");
  readonly #map = new MapStore(this.#kv, EMPTY_HASH);
  /** Revisions read but not yet checked (their log size not yet replayed), in order. */
  readonly #pending: { leafIndex: number; revision: IndexRevision; note: string }[] = [];
  #lastLogSize = 0;

  constructor(options: { main: TileReader; index: TileReader; logKey: string }) {
    this.#main = options.main;
    this.#index = options.index;
    this.#logKey = options.logKey;
    this.#indexKey = indexLogVerifierKey(options.logKey);
  }

  async update(): Promise<IndexAuditResult> {
    // The index checkpoint first: every revision it covers was made from a log at most as long
    // as the main checkpoint fetched after it.
    const indexNote = await this.#index.checkpoint();
    const icp = openCheckpoint(indexNote, verifierFromKey(this.#indexKey)).checkpoint;
    const mainNote = await this.#main.checkpoint();
    const mcp = openCheckpoint(mainNote, verifierFromKey(this.#logKey)).checkpoint;
    check(icp.size >= this.#indexRange.end, "INCONSISTENT", "the index log shrank");
    check(mcp.size >= this.#mainRange.end, "INCONSISTENT", "the log shrank");

    for (let at = this.#indexRange.end; at < icp.size; ) {
      const bundle = await this.#index.entryBundle(Math.floor(at / TILE_WIDTH), icp.size);
      for (let k = at % TILE_WIDTH; k < bundle.entries.length; k++, at++) {
        const leaf = bundle.entries[k]!;
        this.#indexRange.append(hashLeaf(leaf));
        const revision = decodeRevision(decodeLeaf(leaf).payload);
        if (revision.logSize < this.#lastLogSize) {
          this.#evidence(
            `index revision ${at} covers ${revision.logSize} entries, fewer than the revision before it (${this.#lastLogSize})`,
            indexNote,
            at,
          );
        }
        this.#lastLogSize = revision.logSize;
        this.#pending.push({ leafIndex: at, revision, note: indexNote });
      }
    }
    if (!same(this.#indexRange.root(), icp.rootHash)) {
      throw new MonitorError(
        this.#evidenceOf(
          "PROOF_MISMATCH",
          "the index log's entries do not make its checkpoint's root",
          indexNote,
        ),
      );
    }

    // Revisions beyond the log's checkpoint: the index claims entries the log has not signed.
    if (this.#lastLogSize > mcp.size) {
      const beyond = this.#pending.find((p) => p.revision.logSize > mcp.size)!;
      this.#evidence(
        `index revision ${beyond.leafIndex} covers ${beyond.revision.logSize} entries; the log's checkpoint has ${mcp.size}`,
        beyond.note,
        beyond.leafIndex,
      );
    }
    // Replay the main log up to the latest revision (never past it: each revision is checked
    // at exactly its size), checking each pending revision on the way.
    const target = this.#lastLogSize;
    await this.#settle(this.#mainRange.end);
    for (let at = this.#mainRange.end; at < target; ) {
      const bundle = await this.#main.entryBundle(Math.floor(at / TILE_WIDTH), mcp.size);
      for (let k = at % TILE_WIDTH; k < bundle.entries.length && at < target; k++, at++) {
        this.#replay(at, bundle.entries[k]!);
        await this.#settle(at + 1);
      }
    }
    // What was replayed is the log's own tree: consistent with its signed checkpoint.
    try {
      const proof =
        target === 0 || target === mcp.size
          ? []
          : await this.#main.consistencyProof(target, mcp.size);
      verifyConsistency(target, mcp.size, proof, this.#mainRange.root(), mcp.rootHash);
    } catch (e) {
      throw new MonitorError(
        this.#evidenceOf(
          "PROOF_MISMATCH",
          `the log's entries do not make a tree consistent with its checkpoint: ${(e as Error).message}`,
          mainNote,
          true,
        ),
      );
    }
    return {
      revisions: icp.size,
      entries: target,
      keys: this.#keys.size,
      indexedSize: this.#lastLogSize,
    };
  }

  /** Checks every pending revision of `size` entries (the replay is at exactly `size`). */
  async #settle(size: number): Promise<void> {
    while (this.#pending.length > 0 && this.#pending[0]!.revision.logSize === size) {
      await this.#flushMap();
      this.#checkRevision(this.#pending.shift()!);
    }
  }

  async #flushMap(): Promise<void> {
    if (this.#changed.size === 0) return;
    const ops: WriteOp[] = [];
    await this.#map.update(
      [...this.#changed].map((s) => ({
        key: s.mapKey,
        value: mapValueOf(s.range.end, s.range.root()),
      })),
      ops,
    );
    await this.#kv.write(ops);
    this.#changed.clear();
  }

  #replay(index: number, leaf: Uint8Array): void {
    this.#mainRange.append(hashLeaf(leaf));
    let payload: Uint8Array;
    try {
      payload = decodeLeaf(leaf).payload;
    } catch {
      return; // not a Vellum leaf: no keys
    }
    for (const key of indexKeysOfPayload(payload)) {
      const id = `${key.kind}\u0000${key.value}`;
      let state = this.#keys.get(id);
      if (state === undefined) {
        state = { key, mapKey: mapKeyOf(key), range: CompactRange.empty(), last: -1 };
        this.#keys.set(id, state);
      }
      if (state.last === index) continue;
      state.range.append(hashLeaf(listLeaf(index)));
      state.last = index;
      this.#changed.add(state);
    }
  }

  #checkRevision(p: { leafIndex: number; revision: IndexRevision; note: string }): void {
    const { revision } = p;
    if (!same(revision.logRoot, this.#mainRange.root())) {
      this.#evidence(
        `index revision ${p.leafIndex} commits another log root at ${revision.logSize} entries than the log's tree`,
        p.note,
        p.leafIndex,
        this.#mainRange.root(),
        revision.logRoot,
      );
    }
    if (!same(revision.mapRoot, this.#map.root)) {
      this.#evidence(
        `index revision ${p.leafIndex} commits a map at ${revision.logSize} entries that the log's entries do not make (replaying the published key function)`,
        p.note,
        p.leafIndex,
        this.#map.root,
        revision.mapRoot,
      );
    }
  }

  #evidence(
    reason: string,
    note: string,
    leafIndex: number,
    expected?: Uint8Array,
    actual?: Uint8Array,
  ): never {
    throw new MonitorError({
      ...this.#evidenceOf("INCONSISTENT", reason, note),
      index: leafIndex,
      ...(expected === undefined ? {} : { expected: base64Encode(expected) }),
      ...(actual === undefined ? {} : { actual: base64Encode(actual) }),
    });
  }

  #evidenceOf(code: Evidence["code"], reason: string, note: string, main = false): Evidence {
    const cp = openCheckpoint(
      note,
      verifierFromKey(main ? this.#logKey : this.#indexKey),
    ).checkpoint;
    return {
      format: EVIDENCE_FORMAT,
      code,
      reason,
      origin: cp.origin,
      logKey: main ? this.#logKey : this.#indexKey,
      url: main ? this.#main.url : this.#index.url,
      detectedAt: new Date().toISOString(),
      previous: null,
      checkpoint: { size: cp.size, rootHash: base64Encode(cp.rootHash), note },
    };
  }
}
