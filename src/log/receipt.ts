/**
 * @module
 * What a submitter gets back: where the entry is, the signed checkpoint that covers it, and the
 * inclusion proof; `toTlogProof()` renders the offline receipt (C2SP tlog-proof) that anyone can
 * verify with the log's public key alone. Its `extra` is `[1, id, timestamp]` (src/core/entry.ts),
 * so a verifier holding the payload can rebuild the exact leaf.
 */
import { encodeLeafFields, formatUuid } from "../core/entry.js";
import { formatTlogProof } from "../core/tlog-proof.js";

export class Receipt {
  #text: string | undefined;

  constructor(
    readonly index: number,
    readonly id: Uint8Array,
    readonly timestamp: number,
    readonly leafHash: Uint8Array,
    /** The signed checkpoint note the proof is against. */
    readonly checkpoint: string,
    readonly treeSize: number,
    readonly proof: readonly Uint8Array[],
    /** True when the payload (or idempotency key) was already in the log: this is the original. */
    readonly duplicate: boolean,
  ) {}

  get idText(): string {
    return formatUuid(this.id);
  }

  asDuplicate(): Receipt {
    return new Receipt(
      this.index,
      this.id,
      this.timestamp,
      this.leafHash,
      this.checkpoint,
      this.treeSize,
      this.proof,
      true,
    );
  }

  /** The C2SP tlog-proof text (computed once, on demand). */
  toTlogProof(): string {
    this.#text ??= formatTlogProof({
      extra: encodeLeafFields({ id: this.id, timestamp: this.timestamp }),
      index: this.index,
      proof: this.proof,
      checkpoint: this.checkpoint,
    });
    return this.#text;
  }
}
