/**
 * @module
 * What a submitter gets back: where the entry is, the signed checkpoint that covers it, and,
 * on demand, the inclusion proof and the offline receipt (C2SP tlog-proof) that anyone can
 * verify with the log's public key alone. Its `extra` is `[1, id, timestamp, leafHash]`, or
 * `[2, id, timestamp, submitter, leafHash]` for an entry with a submitter (src/core/entry.ts), so
 * a verifier holding the payload can rebuild the exact leaf.
 *
 * The proof is computed when first asked for, not when the entry is acknowledged: the nodes it
 * needs are durable and immutable by then (the checkpoint covering them is stored), so the
 * answer is the same at any later time, and in-process writers that keep only the index do not
 * pay for a proof they never read.
 */
import { encodeLeafFields, formatUuid } from "../core/entry.js";
import { writeTlogProof } from "../core/tlog-proof.js";
import { base64 as b64 } from "../platform/base64.js";

/** Builds the inclusion proof of `index` in the tree of `size`. */
export type ProofSource = (index: number, size: number) => Promise<Uint8Array[]>;

export class Receipt {
  #proof: Promise<Uint8Array[]> | undefined;

  constructor(
    readonly index: number,
    readonly id: Uint8Array,
    readonly timestamp: number,
    readonly leafHash: Uint8Array,
    /** The signed checkpoint note the proof is against. */
    readonly checkpoint: string,
    readonly treeSize: number,
    /** True when the payload (or idempotency key) was already in the log: this is the original. */
    readonly duplicate: boolean,
    readonly source: ProofSource,
    /**
     * True only when the log has a witness policy and the checkpoint met its quorum. False
     * without a witness policy (the checkpoint is signed by the log alone), and when no
     * checkpoint covering this entry met the quorum in time (fetch a witnessed receipt later).
     */
    readonly witnessed = false,
    /** Who submitted the entry (the token's id), committed to in its leaf; undefined in v1. */
    readonly submitter: string | undefined = undefined,
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
      true,
      this.source,
      this.witnessed,
      this.submitter,
    );
  }

  /** The inclusion proof of this entry in the checkpoint's tree (computed once). */
  proof(): Promise<Uint8Array[]> {
    this.#proof ??= this.source(this.index, this.treeSize);
    return this.#proof;
  }

  /**
   * The C2SP tlog-proof text, through the core's one writer without formatTlogProof's re-parse
   * of the checkpoint note: this one is the log's own, checked when signed, and the receipt of
   * every entry of a batch carries it (a test checks both give the same text).
   */
  async tlogProof(): Promise<string> {
    const extra = b64(encodeLeafFields(this));
    return writeTlogProof(extra, this.index, await this.proof(), b64, this.checkpoint);
  }
}
