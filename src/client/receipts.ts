/**
 * @module
 * Verifying a Vellum receipt offline, with nothing but the log's public key (and, optionally, a
 * witness policy and the payload). A receipt is a C2SP tlog-proof whose `extra` is
 * `[1, id, timestamp, leafHash]`: the proof shows that leaf hash at `index` under the signed
 * checkpoint; given the payload, the leaf rebuilt from it, the id and the timestamp must hash to
 * that same leaf hash, which proves the receipt is for exactly that entry.
 */
import { base64Encode, bytesEqual } from "../core/bytes.js";
import { cosignatureVerifier } from "../core/cosignature.js";
import { decodeLeafFields, formatUuid, leafFromFields } from "../core/entry.js";
import { VellumError } from "../core/errors.js";
import { parseVerifierKey, verifierFromKey } from "../core/keys.js";
import { verifyKnownSignatures } from "../core/note.js";
import { type Policy, parsePolicy } from "../core/policy.js";
import { hashLeaf } from "../core/rfc6962.js";
import { parseTlogProof, verifyTlogProof } from "../core/tlog-proof.js";

export interface VerifiedReceipt {
  readonly index: number;
  readonly treeSize: number;
  readonly rootHash: string;
  readonly origin: string;
  readonly leafHash: Uint8Array;
  readonly id: string;
  /** Server timestamp of the entry, milliseconds since the epoch. */
  readonly timestamp: number;
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
  const parsed = parseTlogProof(receipt);
  if (parsed.extra === undefined) {
    throw new VellumError("MALFORMED", "the receipt has no extra line: it is not a Vellum receipt");
  }
  const fields = decodeLeafFields(parsed.extra);
  if (fields.leafHash === undefined) {
    throw new VellumError("MALFORMED", "the receipt's extra carries no leaf hash");
  }
  let leafHash = fields.leafHash;
  if (options.payload !== undefined) {
    const rebuilt = hashLeaf(leafFromFields(parsed.extra, options.payload));
    if (!bytesEqual(rebuilt, fields.leafHash)) {
      throw new VellumError(
        "PROOF_MISMATCH",
        "the entry does not match the receipt: its leaf (payload, id, timestamp) hashes differently",
      );
    }
    leafHash = rebuilt;
  }
  const policy = typeof options.policy === "string" ? parsePolicy(options.policy) : options.policy;
  const verified = verifyTlogProof(
    receipt,
    leafHash,
    verifierFromKey(options.logKey),
    policy === undefined ? {} : { policy },
  );
  // A Vellum log also timestamps its checkpoints with a cosignature by the same key (type 0x04):
  // if present it must verify too, and it says when the checkpoint was signed.
  const key = parseVerifierKey(options.logKey);
  const stamp = verifyKnownSignatures(parsed.checkpoint, [
    cosignatureVerifier(key.name, key.publicKey),
  ]);
  const signedAt = stamp.signatures[0]?.timestamp;
  return {
    index: verified.index,
    treeSize: verified.checkpoint.size,
    rootHash: base64Encode(verified.checkpoint.rootHash),
    origin: verified.checkpoint.origin,
    leafHash,
    id: formatUuid(fields.id),
    timestamp: fields.timestamp,
    witnesses: verified.witnesses === undefined ? [] : [...verified.witnesses].sort(),
    signedAt,
    payloadChecked: options.payload !== undefined,
  };
}
