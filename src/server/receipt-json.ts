/**
 * @module
 * Receipts as JSON text, for the submit and receipt routes.
 */
import { encodeLeafFields } from "../core/entry.js";
import { expandMultiproof } from "../core/multiproof.js";
import { writeTlogProof } from "../core/tlog-proof.js";
import type { Receipt } from "../log/receipt.js";
import { base64 as base64Encode } from "../platform/base64.js";

/** JSON string literals of recent checkpoint notes: every receipt of a batch carries the same. */
let quotedNote = { note: "", json: '""' };
function quoteNote(note: string): string {
  if (quotedNote.note !== note) quotedNote = { note, json: JSON.stringify(note) };
  return quotedNote.json;
}

/**
 * A receipt as the members of a JSON object (no braces): index, id, timestamp, submitter (the
 * token id committed to in the leaf, null for a version-1 leaf), leafHash, treeSize, checkpoint,
 * receipt (the C2SP tlog-proof text), duplicate, witnessed. Written
 * directly rather than through JSON.stringify, which would build the tlog-proof text and then
 * scan it again to escape it: here its newlines are written escaped, and the checkpoint note,
 * the same for the whole batch, is escaped once. Tests compare the receipt text with the core's
 * tlog-proof formatter byte for byte.
 *
 * `proof` is the receipt's inclusion proof (default: computed by the receipt); `encode` gives a
 * hash's base64 (a batch passes one that remembers the hashes its receipts share).
 */
export async function receiptMembers(
  r: Receipt,
  proof?: readonly Uint8Array[],
  encode: (hash: Uint8Array) => string = base64Encode,
): Promise<string> {
  const quoted = quoteNote(r.checkpoint);
  const extra = base64Encode(encodeLeafFields(r));
  // The core's tlog-proof writer, with escaped line breaks and the escaped note (quoted minus
  // its opening quote, so the closing one ends the string).
  const hashes = proof ?? (await r.proof());
  const receipt = `"${writeTlogProof(extra, r.index, hashes, encode, quoted.slice(1), "\\n")}`;
  return (
    `"index":${r.index},"id":"${r.idText}","timestamp":${r.timestamp},` +
    // Printable ASCII, but it may hold a quote or a backslash: escaped by JSON.stringify.
    `"submitter":${r.submitter === undefined ? "null" : JSON.stringify(r.submitter)},` +
    `"leafHash":"${base64Encode(r.leafHash)}","treeSize":${r.treeSize},"checkpoint":${quoted},` +
    `"receipt":${receipt},"duplicate":${r.duplicate},"witnessed":${r.witnessed}`
  );
}

/**
 * The inclusion proofs of many receipts, computed together: receipts against the same tree size
 * share one multiproof (src/core/multiproof.ts), expanded here into each one's proof. The shared
 * hashes are then the same objects in every proof, so `encode` caches base64 by identity.
 */
export async function batchProofs(
  receipts: readonly Receipt[],
  multiproof: (indices: readonly number[], size: number) => Promise<Uint8Array[]>,
): Promise<{ proofOf: (r: Receipt) => readonly Uint8Array[]; encode: (h: Uint8Array) => string }> {
  const bySize = new Map<number, Map<number, Uint8Array>>();
  for (const r of receipts) {
    let leaves = bySize.get(r.treeSize);
    if (leaves === undefined) {
      leaves = new Map();
      bySize.set(r.treeSize, leaves);
    }
    leaves.set(r.index, r.leafHash);
  }
  const proofs = new Map<number, Map<number, Uint8Array[]>>();
  for (const [size, leaves] of bySize) {
    const indices = [...leaves.keys()].sort((a, b) => a - b);
    const leafHashes = indices.map((i) => leaves.get(i)!);
    const expanded = expandMultiproof(indices, leafHashes, size, await multiproof(indices, size));
    proofs.set(size, new Map(indices.map((index, k) => [index, expanded.proofs[k]!])));
  }
  const encoded = new Map<Uint8Array, string>();
  return {
    proofOf: (r) => proofs.get(r.treeSize)!.get(r.index)!,
    encode: (h) => {
      let text = encoded.get(h);
      if (text === undefined) {
        text = base64Encode(h);
        encoded.set(h, text);
      }
      return text;
    },
  };
}
