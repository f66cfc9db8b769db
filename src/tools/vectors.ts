/**
 * @module
 * The `tlog-vectors/v1` generator (format: test/known-answers/README.md). Given leaves and
 * checkpoint keys, computes every other section with Vellum's own code, so anyone can diff
 * Vellum against independent implementations for any number of leaves. Pure: the CLI does I/O.
 *
 * Which cases are written is a deterministic function of the number of leaves n, chosen to match
 * reference-vectors-300.json exactly at n = 300 and to spread over tile and power-of-two edges
 * for any n:
 * - proof sizes: 1..17, every 2^k-1, 2^k, 2^k+1 up to n, and n-1, n;
 * - inclusion: all indices for sizes <= 17, else {0, 1, floor(s/2), s-2, s-1};
 * - consistency: all m in 1..s for s <= 17, else m in {2^k-1, 2^k, 2^k+1, n-1, n} up to s;
 * - tile paths: a fixed spread of indices (to 2^40) × levels {0, 1, 5, entries} × widths;
 * - tiles: the resources of sizes 1, 2, 256^k-1, 256^k, 256^k+1 and n;
 * - checkpoints: sizes 0, 1, 256^k and n, signed, then cosigned at `cosignTime`.
 */
import { base64Decode, base64Encode, hexEncode } from "../core/bytes.js";
import { formatCheckpoint } from "../core/checkpoint.js";
import { CompactRange } from "../core/compact.js";
import { cosignerFromKey } from "../core/cosignature.js";
import { sha256 } from "../core/crypto.js";
import { check } from "../core/errors.js";
import { parseVerifierKey, signerFromKey } from "../core/keys.js";
import type { NodeId } from "../core/merkle.js";
import { parseNote, signNote } from "../core/note.js";
import { buildProof, consistencyProofPlan, inclusionProofPlan } from "../core/proof.js";
import { hashLeaf } from "../core/rfc6962.js";
import {
  buildHashTile,
  encodeEntryBundle,
  formatTilePath,
  isEntryBundle,
  MAX_ENTRY_SIZE,
  type TileId,
  tilesForSize,
} from "../core/tiles.js";

export const VECTORS_FORMAT = "tlog-vectors/v1";

/** What the generator takes from an input file: the leaves and the checkpoint keys. */
export interface VectorsInput {
  leaves: string[];
  checkpoints: {
    origin: string;
    logSkey: string;
    logVkey: string;
    cosignerSkey: string;
    cosignerVkey: string;
    cosignTime: number;
  };
}

export interface VectorsFile {
  format: string;
  notes: string[];
  generator: { tool: string; libraries: string };
  leaves: string[];
  leafHashes: string[];
  roots: { treeSize: number; root: string }[];
  inclusion: {
    leafIdx: number;
    treeSize: number;
    root: string;
    leafHash: string;
    leaf: string;
    proof: string[];
  }[];
  consistency: { size1: number; size2: number; root1: string; root2: string; proof: string[] }[];
  tilePaths: { level: number; index: number; width: number; path: string }[];
  tiles: {
    treeSize: number;
    resources: { path: string; length: number; sha256: string; data?: string }[];
  }[];
  checkpoints: VectorsInput["checkpoints"] & {
    signed: { treeSize: number; note: string }[];
    cosigned: { treeSize: number; note: string }[];
  };
}

/** Largest leaf count the generator accepts (its output grows about linearly with n). */
export const MAX_VECTOR_LEAVES = 1_000_000;
const INLINE_DATA_LIMIT = 1024;
const TILE_PATH_INDICES = [
  0,
  1,
  9,
  10,
  99,
  100,
  999,
  1000,
  1001,
  1234,
  999_999,
  1_000_000,
  1_234_067,
  2 ** 40,
];
const TILE_PATH_LEVELS = [0, 1, 5, -1];
const TILE_PATH_WIDTHS = [256, 1, 255];

const sortedUnique = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);

function powerOfTwoEdges(n: number): number[] {
  const out: number[] = [];
  for (let p = 2; p - 1 <= n; p *= 2) out.push(p - 1, p, p + 1);
  return out.filter((x) => x >= 1 && x <= n);
}

/** Tree sizes that get inclusion and consistency proofs. */
export function proofSizes(n: number): number[] {
  const small = Array.from({ length: Math.min(17, n) }, (_, i) => i + 1);
  return sortedUnique([...small, ...powerOfTwoEdges(n), n - 1, n].filter((s) => s >= 1));
}

export function inclusionIndices(size: number): number[] {
  if (size <= 17) return Array.from({ length: size }, (_, i) => i);
  return sortedUnique([0, 1, Math.floor(size / 2), size - 2, size - 1]);
}

export function consistencyFirstSizes(size: number, n: number): number[] {
  if (size <= 17) return Array.from({ length: size }, (_, i) => i + 1);
  return sortedUnique([...powerOfTwoEdges(n), n - 1, n]).filter((m) => m >= 1 && m <= size);
}

export function tileSizes(n: number): number[] {
  const sizes = [1, 2, n];
  for (let p = 256; p - 1 <= n; p *= 256) sizes.push(p - 1, p, p + 1);
  return sortedUnique(sizes.filter((s) => s >= 1 && s <= n));
}

export function checkpointSizes(n: number): number[] {
  const sizes = [0, 1, n];
  for (let p = 256; p <= n; p *= 256) sizes.push(p);
  return sortedUnique(sizes.filter((s) => s <= n));
}

/** Computes a complete `tlog-vectors/v1` document from `input.leaves` and its keys. */
export function generateVectors(input: VectorsInput): VectorsFile {
  check(Array.isArray(input.leaves), "MALFORMED", "input: `leaves` must be an array of base64");
  check(
    input.leaves.length <= MAX_VECTOR_LEAVES,
    "TOO_LARGE",
    `input: at most ${MAX_VECTOR_LEAVES} leaves, got ${input.leaves.length}`,
  );
  const n = input.leaves.length;
  const leaves = input.leaves.map((l, i) => base64Decode(l, `leaves[${i}]`));
  const leafHashes = leaves.map((l) => hashLeaf(l));

  // One pass builds the whole tree: every complete node, and the root of every prefix.
  const nodes = new Map<string, Uint8Array>();
  const range = CompactRange.empty();
  const roots = [range.root()];
  for (const h of leafHashes) {
    range.append(h, (level, index, hash) => nodes.set(`${level}/${index}`, hash));
    roots.push(range.root());
  }
  const readNode = (id: NodeId): Uint8Array => {
    const h = nodes.get(`${id.level}/${id.index}`);
    check(h !== undefined, "INTERNAL", `node ${id.level}/${id.index} missing`);
    return h;
  };
  const b64 = base64Encode;

  const inclusion: VectorsFile["inclusion"] = [];
  const consistency: VectorsFile["consistency"] = [];
  for (const size of proofSizes(n)) {
    for (const i of inclusionIndices(size)) {
      inclusion.push({
        leafIdx: i,
        treeSize: size,
        root: b64(roots[size]!),
        leafHash: b64(leafHashes[i]!),
        leaf: input.leaves[i]!,
        proof: buildProof(inclusionProofPlan(i, size), readNode).map(b64),
      });
    }
  }
  for (const size of proofSizes(n)) {
    for (const m of consistencyFirstSizes(size, n)) {
      consistency.push({
        size1: m,
        size2: size,
        root1: b64(roots[m]!),
        root2: b64(roots[size]!),
        proof: buildProof(consistencyProofPlan(m, size), readNode).map(b64),
      });
    }
  }

  const tilePaths: VectorsFile["tilePaths"] = [];
  for (const index of TILE_PATH_INDICES) {
    for (const level of TILE_PATH_LEVELS) {
      for (const width of TILE_PATH_WIDTHS) {
        const tile: TileId = { level: level < 0 ? "entries" : level, index, width };
        tilePaths.push({ level, index, width, path: formatTilePath(tile) });
      }
    }
  }

  const tiles = tileSizes(n).map((treeSize) => ({
    treeSize,
    resources: [...tilesForSize(treeSize)].map((tile) => {
      const data = isEntryBundle(tile)
        ? encodeEntryBundle(leaves.slice(tile.index * 256, tile.index * 256 + tile.width))
        : buildHashTile(tile, (height, index) => readNode({ level: height, index }));
      return {
        path: formatTilePath(tile),
        length: data.length,
        sha256: hexEncode(sha256(data)),
        ...(data.length <= INLINE_DATA_LIMIT ? { data: b64(data) } : {}),
      };
    }),
  }));

  const keys = input.checkpoints;
  const logSigner = signerFromKey(keys.logSkey);
  const cosigner = cosignerFromKey(keys.cosignerSkey, keys.cosignTime);
  // The verifier keys are inputs too: refuse a file whose signer and verifier keys disagree.
  for (const [skey, vkey] of [
    [logSigner, keys.logVkey],
    [cosigner, keys.cosignerVkey],
  ] as const) {
    const v = parseVerifierKey(vkey);
    check(
      v.name === skey.name && v.keyId === skey.keyId,
      "BAD_KEY",
      `input: verifier key ${vkey} does not match its signer key`,
    );
  }
  const signed = checkpointSizes(n).map((treeSize) => ({
    treeSize,
    note: signNote(
      formatCheckpoint({
        origin: keys.origin,
        size: treeSize,
        rootHash: roots[treeSize]!,
        extensions: [],
      }),
      [logSigner],
    ),
  }));
  const cosigned = signed.map(({ treeSize, note }) => ({
    treeSize,
    note: signNote(parseNote(note), [cosigner]),
  }));

  return {
    format: VECTORS_FORMAT,
    notes: [
      "All byte strings are standard base64 (RFC 4648 section 4) unless named sha256 (hex).",
      "Hashing: SHA-256, leaf = H(0x00 || leaf), node = H(0x01 || left || right) (RFC 6962 / RFC 9162).",
      "roots[k] is the root of leaves[0:k]; roots[0] is SHA-256 of the empty string.",
      "leafIdx is 0-based; proofs are ordered from the leaf/bottom up, as in RFC 6962 and RFC 9162.",
      `tiles[] lists, per tree size, every C2SP tlog-tiles resource a log of that size serves; data is included when <= ${INLINE_DATA_LIMIT} bytes.`,
      `Entries are at most ${MAX_ENTRY_SIZE} bytes (the entry bundle length prefix is a uint16).`,
      "Computed by Vellum's own code from the leaves and keys of the input file only.",
    ],
    generator: {
      tool: "vellum vectors",
      libraries: "vellum (src/core), @noble/hashes, @noble/ed25519 or node:crypto",
    },
    leaves: input.leaves,
    leafHashes: leafHashes.map(b64),
    roots: roots.map((root, treeSize) => ({ treeSize, root: b64(root) })),
    inclusion,
    consistency,
    tilePaths,
    tiles,
    checkpoints: {
      origin: keys.origin,
      logSkey: keys.logSkey,
      logVkey: keys.logVkey,
      signed,
      cosignerSkey: keys.cosignerSkey,
      cosignerVkey: keys.cosignerVkey,
      cosignTime: keys.cosignTime,
      cosigned,
    },
  };
}
