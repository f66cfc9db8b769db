/**
 * @module
 * Verifying a Vellum receipt offline, with nothing but the log's public key (and, optionally, a
 * witness policy and the payload). A receipt is a C2SP tlog-proof whose `extra` is
 * `[1, id, timestamp, leafHash]` or `[2, id, timestamp, submitter, leafHash]`: the proof shows
 * that leaf hash at `index` under the signed checkpoint; given the payload, the leaf rebuilt from
 * it and the other fields must hash to that same leaf hash, which proves the receipt is for
 * exactly that entry, submitted by exactly that submitter.
 */
import { base64Encode, bytesEqual } from "../core/bytes.js";
import { type Checkpoint, openCheckpoint } from "../core/checkpoint.js";
import { cosignatureVerifier } from "../core/cosignature.js";
import { decodeLeafFields, formatUuid, leafFromFields } from "../core/entry.js";
import { VellumError } from "../core/errors.js";
import { parseVerifierKey, verifierFromKey } from "../core/keys.js";
import { verifyKnownSignatures } from "../core/note.js";
import { type Policy, parsePolicy, verifyQuorum } from "../core/policy.js";
import { hashLeaf } from "../core/rfc6962.js";
import { parseTlogProof } from "../core/tlog-proof.js";
import { verifyInclusion } from "../core/verify.js";

export interface VerifiedReceipt {
  readonly index: number;
  readonly treeSize: number;
  readonly rootHash: string;
  readonly origin: string;
  readonly leafHash: Uint8Array;
  readonly id: string;
  /** Server timestamp of the entry, milliseconds since the epoch. */
  readonly timestamp: number;
  /**
   * Who submitted the entry (the token id in the receipt's extra), undefined for a version-1
   * entry. Proven (part of the leaf) only when `payloadChecked`: without the payload the leaf
   * cannot be rebuilt, and the extra is not authenticated by itself.
   */
  readonly submitter: string | undefined;
  /** Policy names of the witnesses whose cosignatures verified (empty without a policy). */
  readonly witnesses: readonly string[];
  /** POSIX seconds of the log's timestamp signature on the checkpoint, if it has one. */
  readonly signedAt: number | undefined;
  /** Whether the payload was given and matched. */
  readonly payloadChecked: boolean;
}

export interface VerifyReceiptOptions {
  /** The log's verifier key (`DATA/log.vkey`). */
  readonly logKey: string;
  /** A C2SP tlog-policy (text or parsed): the witness quorum the checkpoint must meet. */
  readonly policy?: string | Policy;
  /** The entry's payload: proves the receipt is for exactly these bytes. */
  readonly payload?: Uint8Array;
}

/** Verifies a receipt; throws a VellumError saying what failed. */
export function verifyReceipt(
  receipt: string | Uint8Array,
  options: VerifyReceiptOptions,
): VerifiedReceipt {
  return receiptVerifier(options)(receipt, options.payload);
}

/** What a checkpoint note's signatures established (the same for every receipt that carries it). */
interface CheckedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly witnesses: readonly string[];
  readonly signedAt: number | undefined;
}

/** Distinct checkpoints a receiptVerifier remembers; the receipts of a batch share one. */
const MAX_REMEMBERED_CHECKPOINTS = 1024;

/**
 * A verifier for many receipts of one log: the checks of verifyReceipt, with each distinct
 * checkpoint note's signatures (log, timestamp, witness quorum) verified once and remembered by
 * its exact text — the same text verifies the same way — so a file of receipts from batches
 * costs one signature check per batch, not per receipt.
 */
export function receiptVerifier(
  options: Omit<VerifyReceiptOptions, "payload">,
): (receipt: string | Uint8Array, payload?: Uint8Array) => VerifiedReceipt {
  const logVerifier = verifierFromKey(options.logKey);
  const key = parseVerifierKey(options.logKey);
  // A Vellum log also timestamps its checkpoints with a cosignature by the same key (type 0x04):
  // if present it must verify too, and it says when the checkpoint was signed.
  const stampVerifier = cosignatureVerifier(key.name, key.publicKey);
  const policy = typeof options.policy === "string" ? parsePolicy(options.policy) : options.policy;
  const remembered = new Map<string, CheckedCheckpoint>();
  const check = (note: string): CheckedCheckpoint => {
    const known = remembered.get(note);
    if (known !== undefined) return known;
    const { checkpoint } = openCheckpoint(note, logVerifier);
    const witnesses = policy === undefined ? [] : [...verifyQuorum(policy, note).witnesses].sort();
    const stamp = verifyKnownSignatures(note, [stampVerifier]);
    const checked = { checkpoint, witnesses, signedAt: stamp.signatures[0]?.timestamp };
    if (remembered.size >= MAX_REMEMBERED_CHECKPOINTS) remembered.clear();
    remembered.set(note, checked);
    return checked;
  };

  return (receipt, payload) => {
    const parsed = parseTlogProof(receipt);
    if (parsed.extra === undefined) {
      throw new VellumError(
        "MALFORMED",
        "the receipt has no extra line: it is not a Vellum receipt",
      );
    }
    const fields = decodeLeafFields(parsed.extra);
    if (fields.leafHash === undefined) {
      throw new VellumError("MALFORMED", "the receipt's extra carries no leaf hash");
    }
    let leafHash = fields.leafHash;
    if (payload !== undefined) {
      const rebuilt = hashLeaf(leafFromFields(parsed.extra, payload));
      if (!bytesEqual(rebuilt, fields.leafHash)) {
        throw new VellumError(
          "PROOF_MISMATCH",
          "the entry does not match the receipt: its leaf (payload, id, timestamp, submitter) hashes differently",
        );
      }
      leafHash = rebuilt;
    }
    const { checkpoint, witnesses, signedAt } = check(parsed.checkpoint);
    verifyInclusion(parsed.index, checkpoint.size, leafHash, parsed.proof, checkpoint.rootHash);
    return {
      index: parsed.index,
      treeSize: checkpoint.size,
      rootHash: base64Encode(checkpoint.rootHash),
      origin: checkpoint.origin,
      leafHash,
      id: formatUuid(fields.id),
      timestamp: fields.timestamp,
      submitter: fields.submitter,
      witnesses,
      signedAt,
      payloadChecked: payload !== undefined,
    };
  };
}
