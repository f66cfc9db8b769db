/**
 * @module
 * The index's sparse Merkle map (src/core/smt.ts) kept in a key-value store, node by node, so a
 * revision updates only the paths of the keys it changed and a proof is one read per level.
 *
 * The stored shape is the map's own: a subtree with two or more keys is an inner node (the
 * hashes of its two children), a subtree with one key is that key's leaf (key and value) where
 * the subtree starts, an empty subtree is nothing. A node is stored under "m" ‖ u16be(depth) ‖
 * the first `depth` bits of its path (the remaining bits of the last byte zero). Keys are never
 * removed (an index list only grows), so an update only ever turns nothing into a leaf, or a
 * leaf into an inner node. Keeping the children's hashes in the inner node means an update
 * reads only the nodes on the changed keys' paths (never a sibling, never an empty child), and a
 * proof reads one node per level.
 *
 * Not safe for concurrent use: the index engine (engine.ts) serialises updates and proofs.
 */
import { bytesEqual } from "../core/bytes.js";
import { check } from "../core/errors.js";
import { LruCache } from "../core/lru.js";
import {
  EMPTY_HASH,
  keyBit,
  type SmtEntry,
  type SmtProof,
  smtLeafHash,
  smtNodeHash,
} from "../core/smt.js";
import type { KeyValueStore, WriteOp } from "../storage/types.js";

type MapNode =
  | { readonly kind: "inner"; readonly left: Uint8Array; readonly right: Uint8Array }
  | { readonly kind: "leaf"; readonly key: Uint8Array; readonly value: Uint8Array };

const INNER = 1;
const LEAF = 0;

function nodeKey(path: Uint8Array, depth: number): Uint8Array {
  const bytes = (depth + 7) >> 3;
  const out = new Uint8Array(3 + bytes);
  out[0] = 0x6d; // "m"
  out[1] = depth >> 8;
  out[2] = depth & 0xff;
  out.set(path.subarray(0, bytes), 3);
  if (depth & 7) out[2 + bytes] = out[2 + bytes]! & (0xff << (8 - (depth & 7)));
  return out;
}

/** The path of the sibling at `depth`: `path`'s first depth bits, then bit `depth` flipped. */
function siblingPath(path: Uint8Array, depth: number): Uint8Array {
  // A copy, never a view: `path` may be a Buffer (whose slice() shares memory), e.g. a key.
  const out = Uint8Array.from(path);
  out[depth >> 3] = out[depth >> 3]! ^ (0x80 >> (depth & 7));
  return out;
}

function encodeNode(node: MapNode): Uint8Array {
  const out = new Uint8Array(65);
  if (node.kind === "inner") {
    out[0] = INNER;
    out.set(node.left, 1);
    out.set(node.right, 33);
  } else {
    out[0] = LEAF;
    out.set(node.key, 1);
    out.set(node.value, 33);
  }
  return out;
}

function decodeNode(bytes: Uint8Array): MapNode {
  check(
    (bytes[0] === INNER || bytes[0] === LEAF) && bytes.length === 65,
    "STATE_MISMATCH",
    "a stored map node is corrupt",
  );
  // Views, not copies: the value read is this node's own buffer.
  const a = bytes.subarray(1, 33);
  const b = bytes.subarray(33, 65);
  return bytes[0] === INNER
    ? { kind: "inner", left: a, right: b }
    : { kind: "leaf", key: a, value: b };
}

/** Whether a child is known to be empty: no hash (a node built fresh) or the empty hash. */
function isEmpty(hash: Uint8Array | undefined): boolean {
  return hash === undefined || bytesEqual(hash, EMPTY_HASH);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

export class MapStore {
  readonly #kv: KeyValueStore;
  /** Decoded nodes by stored key (the top levels are read by every update and proof). */
  readonly #cache = new LruCache<string, MapNode | null>(200_000);
  #root: Uint8Array;

  constructor(kv: KeyValueStore, root: Uint8Array) {
    this.#kv = kv;
    this.#root = root;
  }

  get root(): Uint8Array {
    return this.#root;
  }

  /** Forget cached nodes (after a failed write: the store is the truth). */
  reset(root: Uint8Array): void {
    this.#cache.clear();
    this.#root = root;
  }

  async #node(path: Uint8Array, depth: number): Promise<MapNode | undefined> {
    const key = nodeKey(path, depth);
    const id = hex(key);
    const cached = this.#cache.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const bytes = await this.#kv.get(key);
    const node = bytes === undefined ? undefined : decodeNode(bytes);
    this.#cache.set(id, node ?? null);
    return node;
  }

  #put(ops: WriteOp[], path: Uint8Array, depth: number, node: MapNode): void {
    const key = nodeKey(path, depth);
    this.#cache.set(hex(key), node);
    ops.push({ type: "put", key, value: encodeNode(node) });
  }

  /**
   * Sets every key of `changes` (distinct keys) to its value; appends the writes to `ops` and
   * returns the new root (also kept). The caller writes `ops` atomically with the revision, and
   * calls reset() if that write fails.
   */
  async update(changes: readonly SmtEntry[], ops: WriteOp[]): Promise<Uint8Array> {
    const sorted = [...changes].sort((a, b) => Buffer.compare(a.key, b.key));
    if (sorted.length === 0) return this.#root;
    this.#root = await this.#update(new Uint8Array(32), 0, sorted, ops);
    return this.#root;
  }

  /** Updates the subtree at (path, depth) with `changes` (all under it, sorted); its new hash. */
  async #update(
    path: Uint8Array,
    depth: number,
    changes: readonly SmtEntry[],
    ops: WriteOp[],
    absent = false,
  ): Promise<Uint8Array> {
    // A child whose hash in its parent is empty (or under a node built fresh) is not stored.
    const node = absent ? undefined : await this.#node(path, depth);
    if (node?.kind === "inner") return this.#split(path, depth, changes, ops, node);
    let all = changes;
    if (node?.kind === "leaf" && !changes.some((c) => bytesEqual(c.key, node.key))) {
      // The leaf moves down beside the new keys.
      all = [...changes, { key: node.key, value: node.value }].sort((a, b) =>
        Buffer.compare(a.key, b.key),
      );
    }
    if (all.length === 1) {
      const only = all[0]!;
      this.#put(ops, path, depth, { kind: "leaf", key: only.key, value: only.value });
      return smtLeafHash(only.key, only.value);
    }
    // Nothing is stored below a leaf or an empty subtree: build the inner node fresh.
    return this.#split(path, depth, all, ops, undefined);
  }

  async #split(
    path: Uint8Array,
    depth: number,
    changes: readonly SmtEntry[],
    ops: WriteOp[],
    existing: (MapNode & { kind: "inner" }) | undefined,
  ): Promise<Uint8Array> {
    check(depth < 256, "INTERNAL", "two equal keys in the map");
    let mid = 0;
    while (mid < changes.length && keyBit(changes[mid]!.key, depth) === 0) mid++;
    const leftPath = Uint8Array.from(path);
    leftPath[depth >> 3] = leftPath[depth >> 3]! & ~(0x80 >> (depth & 7));
    const rightPath = siblingPath(leftPath, depth);
    // A side without changes keeps its hash (from the stored node, or empty when new); both
    // sides at once, so their reads overlap (storage reads are round trips to a thread pool).
    const [left, right] = await Promise.all([
      mid > 0
        ? this.#update(leftPath, depth + 1, changes.slice(0, mid), ops, isEmpty(existing?.left))
        : (existing?.left ?? EMPTY_HASH),
      mid < changes.length
        ? this.#update(rightPath, depth + 1, changes.slice(mid), ops, isEmpty(existing?.right))
        : (existing?.right ?? EMPTY_HASH),
    ]);
    this.#put(ops, path, depth, { kind: "inner", left, right });
    return smtNodeHash(left, right);
  }

  /** The proof for `key` (present or absent) in the current map. */
  async prove(key: Uint8Array): Promise<SmtProof> {
    check(key.length === 32, "MALFORMED", "a map key is 32 bytes");
    const siblings: Uint8Array[] = [];
    for (let depth = 0; depth <= 256; depth++) {
      const node = await this.#node(key, depth);
      if (node === undefined) return { siblings, terminal: null };
      if (node.kind === "leaf") return { siblings, terminal: { key: node.key, value: node.value } };
      const bit = keyBit(key, depth);
      siblings.push(bit === 0 ? node.right : node.left);
      // The path ends at an empty child: nothing stored to read.
      if (bytesEqual(bit === 0 ? node.left : node.right, EMPTY_HASH)) {
        return { siblings, terminal: null };
      }
    }
    throw new Error("unreachable: a map path longer than 256 bits");
  }
}
