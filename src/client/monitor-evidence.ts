/**
 * @module
 * What a monitor hands over when a log misbehaves, and how anyone re-checks it: the evidence
 * format (both signed checkpoints, what mismatched, the offending tile or bundle) thrown with a
 * {@link MonitorError} by the monitor (monitor.ts) and by the split-view and index checks, and
 * {@link verifyEvidence}, which needs nothing but the log's key. Pure: no node:* imports.
 */
import {
  base64Decode,
  base64DecodeFixed,
  base64Encode,
  bytesEqual,
  hexEncode,
} from "../core/bytes.js";
import { type Checkpoint, openCheckpoint } from "../core/checkpoint.js";
import { sha256 } from "../core/crypto.js";
import { check, VellumError } from "../core/errors.js";
import { verifierFromKey } from "../core/keys.js";
import { EMPTY_ROOT, hashLeaf } from "../core/rfc6962.js";
import { decodeEntryBundle, decodeHashTile, TILE_WIDTH } from "../core/tiles.js";
import { verifyConsistency } from "../core/verify.js";

export const EVIDENCE_FORMAT = "vellum-monitor-evidence/v1";
/** Resource bytes up to this size are embedded (base64) in evidence. */
export const EMBED_LIMIT = 1024 * 1024;

export interface EvidenceCheckpoint {
  readonly size: number;
  /** Base64 root hash. */
  readonly rootHash: string;
  /** The signed note, verbatim. */
  readonly note: string;
}

export interface EvidenceResource {
  readonly url: string;
  readonly length: number;
  /** Lowercase hex SHA-256 of the bytes as served (after Content-Encoding decoding). */
  readonly sha256: string;
  /** Base64 of the bytes, when at most 1 MiB. */
  readonly data?: string;
}

export interface Evidence {
  readonly format: typeof EVIDENCE_FORMAT;
  readonly code: "INCONSISTENT" | "PROOF_MISMATCH";
  readonly reason: string;
  readonly origin: string;
  readonly logKey: string;
  readonly url: string;
  /** ISO 8601. */
  readonly detectedAt: string;
  /** The last checkpoint the monitor had verified (null if none). */
  readonly previous: EvidenceCheckpoint | null;
  /** The checkpoint that failed. */
  readonly checkpoint: EvidenceCheckpoint;
  /** The leaf index, or with `level` the node, whose hash mismatched. */
  readonly index?: number;
  /** Tree height of the mismatched node (0 = a leaf). */
  readonly level?: number;
  /** Base64: what the signed data implies, and what the log served or what was computed. */
  readonly expected?: string;
  readonly actual?: string;
  readonly resources?: readonly EvidenceResource[];
  /**
   * A consistency proof from `from` to `to`, the smaller and the larger of the two checkpoints'
   * sizes, built from the log's tiles, which verifies against `oldRoot` and the larger one's root.
   */
  readonly consistency?: {
    readonly from: number;
    readonly to: number;
    readonly oldRoot: string;
    readonly proof: readonly string[];
  };
}

/** A verified inconsistency or mismatch: `code` is INCONSISTENT or PROOF_MISMATCH. */
export class MonitorError extends VellumError {
  declare readonly evidence: Evidence;
  constructor(evidence: Evidence) {
    super(evidence.code, evidence.reason, { evidence });
  }
}

export interface EvidenceCheck {
  /**
   * True when the evidence alone proves the log misbehaved: two checkpoints it signed that
   * cannot both be true. PROOF_MISMATCH evidence shows served data disagreeing with a signed
   * checkpoint; the bytes are not signed, so it is checked for coherence but proves less.
   */
  readonly proven: boolean;
  readonly summary: string;
}

/**
 * Re-checks evidence with nothing but the log's key (default: the one in the evidence — pass
 * the key you trust). Throws (BAD_SIGNATURE, NO_KNOWN_SIGNATURE, MALFORMED, PROOF_MISMATCH) when
 * the evidence does not show what it claims.
 */
export function verifyEvidence(
  evidence: Evidence,
  logKey: string = evidence.logKey,
): EvidenceCheck {
  check(evidence?.format === EVIDENCE_FORMAT, "MALFORMED", `evidence must be ${EVIDENCE_FORMAT}`);
  const verifier = verifierFromKey(logKey);
  const open = (e: EvidenceCheckpoint, what: string): Checkpoint => {
    const cp = openCheckpoint(e.note, verifier).checkpoint;
    check(
      cp.size === e.size && base64Encode(cp.rootHash) === e.rootHash,
      "MALFORMED",
      `${what}: size or root does not match its note`,
    );
    return cp;
  };
  const current = open(evidence.checkpoint, "checkpoint");
  const previous = evidence.previous === null ? undefined : open(evidence.previous, "previous");
  const fail = (why: string): never => {
    throw new VellumError("PROOF_MISMATCH", `the evidence does not show ${why}`);
  };

  for (const r of evidence.resources ?? []) {
    if (r.data === undefined) continue;
    const bytes = base64Decode(r.data, "resource data");
    if (bytes.length !== r.length || hexEncode(sha256(bytes)) !== r.sha256) {
      fail(`the bytes of ${r.url}: their length or SHA-256 differ from the stated ones`);
    }
  }

  if (evidence.code === "INCONSISTENT") {
    if (previous === undefined) return fail("an earlier checkpoint");
    if (previous.size === current.size) {
      if (bytesEqual(previous.rootHash, current.rootHash)) fail("two different roots");
      return {
        proven: true,
        summary: `the log signed two roots for tree size ${current.size}`,
      };
    }
    // The proof runs from the smaller checkpoint's size to the larger one's, whichever of the
    // two the monitor saw first (a log that grew, or one that went back to another history).
    const [small, big] = previous.size < current.size ? [previous, current] : [current, previous];
    const c = evidence.consistency;
    if (c === undefined || c.from !== small.size || c.to !== big.size) {
      return fail("a consistency proof between the two checkpoints");
    }
    const oldRoot = base64DecodeFixed(c.oldRoot, 32, "consistency.oldRoot");
    const proof = c.proof.map((h, i) => base64DecodeFixed(h, 32, `consistency.proof[${i}]`));
    verifyConsistency(c.from, c.to, proof, oldRoot, big.rootHash);
    if (bytesEqual(oldRoot, small.rootHash)) fail("a different old root");
    return {
      proven: true,
      summary: `the log's checkpoint of size ${c.to} commits to a tree whose first ${c.from} leaves have root ${c.oldRoot}, but it signed ${base64Encode(small.rootHash)} for size ${c.from}`,
    };
  }
  check(evidence.code === "PROOF_MISMATCH", "MALFORMED", `unknown evidence code ${evidence.code}`);
  if (current.size === 0) {
    if (bytesEqual(current.rootHash, EMPTY_ROOT)) fail("a bad size-0 root");
    return { proven: true, summary: "the log signed a size-0 checkpoint with a non-empty root" };
  }
  const [bundle, tile] = evidence.resources ?? [];
  if (evidence.level === 0 && evidence.index !== undefined && bundle?.data && tile?.data) {
    // A leaf that does not hash to its tile entry: recompute both from the embedded bytes.
    const at = evidence.index % TILE_WIDTH;
    const entry = decodeEntryBundle(base64Decode(bundle.data, "bundle data"))[at];
    const tileHashes = decodeHashTile(base64Decode(tile.data, "tile data"));
    if (entry === undefined || tileHashes[at] === undefined) fail(`entry ${evidence.index}`);
    if (bytesEqual(hashLeaf(entry!), tileHashes[at]!)) fail("a leaf hash mismatch");
  }
  return {
    proven: false,
    summary: `the log served data that disagrees with its signed checkpoint of size ${current.size}: ${evidence.reason}`,
  };
}
