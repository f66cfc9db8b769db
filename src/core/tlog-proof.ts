/**
 * @module
 * C2SP tlog-proof (`.tlog-proof`), §Format: an offline proof that an entry is in a log.
 *
 *   c2sp.org/tlog-proof@v1\n
 *   [extra <base64>\n]                   opaque, NOT authenticated by anything
 *   index <decimal>\n
 *   <base64 hash>\n ...                  RFC 6962 inclusion path, leaf's sibling first
 *   \n
 *   <checkpoint note, verbatim, with the log signature and any witness cosignatures>
 *
 * Invariants:
 * - the header ends at the FIRST empty line; everything after it is the checkpoint note, kept
 *   byte for byte (its own empty line separates its text from its signatures).
 * - the index is a canonical decimal; each path hash is canonical base64 of exactly 32 bytes;
 *   the extra data, when present, is non-empty canonical base64 (an absent extra is "no line").
 * - verification order: log signature on the checkpoint, then the inclusion proof against the
 *   signed root, then (given a policy) the witness quorum. The extra data is returned as-is and
 *   must never be trusted implicitly.
 * - limits: at most MAX_TLOG_PROOF_HASHES path hashes, MAX_TLOG_PROOF_SIZE bytes overall; the
 *   checkpoint note obeys the note limits.
 */
import {
  base64Decode,
  base64DecodeFixed,
  base64Encode,
  clip,
  parseDecimal,
  utf8Decode,
  utf8Encode,
} from "./bytes.js";
import { type Checkpoint, openCheckpoint } from "./checkpoint.js";
import { check } from "./errors.js";
import type { NoteVerifier } from "./keys.js";
import { MAX_NOTE_SIZE, parseNote, type VerifiedSignature } from "./note.js";
import { type Policy, verifyQuorum } from "./policy.js";
import { HASH_SIZE } from "./rfc6962.js";
import { verifyInclusion } from "./verify.js";

export const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1";
/** Most inclusion path hashes accepted (a tree of 2^53-1 leaves needs at most 53). */
export const MAX_TLOG_PROOF_HASHES = 63;
/** Largest proof accepted or produced, in bytes: a maximal note plus 64 KiB of header. */
export const MAX_TLOG_PROOF_SIZE = MAX_NOTE_SIZE + 64 * 1024;

export interface TlogProof {
  /** Opaque application data; unauthenticated. */
  readonly extra?: Uint8Array;
  /** Zero-based index of the entry. */
  readonly index: number;
  /** Inclusion path, 32-byte hashes from the leaf's sibling up to the root's child. */
  readonly proof: readonly Uint8Array[];
  /** The checkpoint note with its signatures, verbatim. */
  readonly checkpoint: string;
}

export interface VerifiedTlogProof {
  readonly index: number;
  /** Unauthenticated: do not trust implicitly. */
  readonly extra?: Uint8Array;
  readonly checkpoint: Checkpoint;
  /** Verified signatures on the checkpoint: the log's, then witnesses' (with timestamps). */
  readonly signatures: readonly VerifiedSignature[];
  /** With a policy: policy names of the witnesses whose cosignatures verified. */
  readonly witnesses?: ReadonlySet<string>;
}

function checkSize(text: string): void {
  check(
    text.length <= MAX_TLOG_PROOF_SIZE && utf8Encode(text).length <= MAX_TLOG_PROOF_SIZE,
    "TOO_LARGE",
    `tlog-proof exceeds ${MAX_TLOG_PROOF_SIZE} bytes`,
  );
}

/** Parses a .tlog-proof without verifying it. Throws MALFORMED, OUT_OF_RANGE or TOO_LARGE. */
export function parseTlogProof(input: string | Uint8Array): TlogProof {
  if (typeof input !== "string") {
    check(input.length <= MAX_TLOG_PROOF_SIZE, "TOO_LARGE", "tlog-proof is too large");
  }
  const text = typeof input === "string" ? input : utf8Decode(input, "tlog-proof");
  checkSize(text);
  const end = text.indexOf("\n\n");
  check(end >= 0, "MALFORMED", "tlog-proof has no empty line before the checkpoint");
  const lines = text.slice(0, end).split("\n");
  const checkpoint = text.slice(end + 2);

  check(
    lines[0] === TLOG_PROOF_HEADER,
    "MALFORMED",
    `tlog-proof must start with ${TLOG_PROOF_HEADER}`,
  );
  let i = 1;
  let extra: Uint8Array | undefined;
  if (lines[i]?.startsWith("extra ")) {
    extra = base64Decode(lines[i]!.slice("extra ".length), "tlog-proof extra");
    check(extra.length > 0, "MALFORMED", "tlog-proof extra line is empty (omit it instead)");
    i++;
  }
  const indexLine = lines[i] ?? "";
  check(
    indexLine.startsWith("index "),
    "MALFORMED",
    `tlog-proof: expected "index <n>", got "${clip(indexLine)}"`,
  );
  const index = parseDecimal(indexLine.slice("index ".length), "tlog-proof index");
  const hashLines = lines.slice(i + 1);
  check(
    hashLines.length <= MAX_TLOG_PROOF_HASHES,
    "TOO_LARGE",
    `tlog-proof has ${hashLines.length} hashes, over ${MAX_TLOG_PROOF_HASHES}`,
  );
  const proof = hashLines.map((h, j) => base64DecodeFixed(h, HASH_SIZE, `tlog-proof hash ${j}`));
  parseNote(checkpoint); // structure only: signatures are checked by verifyTlogProof
  return extra === undefined ? { index, proof, checkpoint } : { extra, index, proof, checkpoint };
}

/** Writes a .tlog-proof. Throws MALFORMED, OUT_OF_RANGE or TOO_LARGE for what it cannot write. */
export function formatTlogProof(p: TlogProof): string {
  check(
    Number.isSafeInteger(p.index) && p.index >= 0,
    "OUT_OF_RANGE",
    `index must be an integer in [0, 2^53-1], got ${p.index}`,
  );
  check(
    p.proof.length <= MAX_TLOG_PROOF_HASHES,
    "TOO_LARGE",
    `inclusion proof has ${p.proof.length} hashes, over ${MAX_TLOG_PROOF_HASHES}`,
  );
  for (const [j, h] of p.proof.entries()) {
    check(h.length === HASH_SIZE, "MALFORMED", `inclusion proof hash ${j} must be 32 bytes`);
  }
  check(
    p.extra === undefined || p.extra.length > 0,
    "MALFORMED",
    "extra data must be non-empty (leave it undefined instead)",
  );
  parseNote(p.checkpoint);
  const extra = p.extra === undefined ? undefined : base64Encode(p.extra);
  const out = writeTlogProof(extra, p.index, p.proof, base64Encode, p.checkpoint);
  checkSize(out);
  return out;
}

/**
 * The one writer of tlog-proof bytes, unchecked: formatTlogProof checks its input first;
 * receipts, whose parts the log built and checked when it signed, write through it directly
 * (one string, no re-parse of the note). `nl` is the line break as written: "\n", or the two
 * characters `\n` when the text goes straight into a JSON string — the checkpoint is then
 * passed already escaped. `encode` turns a hash into base64 (a batch passes a caching one).
 */
export function writeTlogProof(
  extraBase64: string | undefined,
  index: number,
  proof: readonly Uint8Array[],
  encode: (hash: Uint8Array) => string,
  checkpoint: string,
  nl = "\n",
): string {
  let text = TLOG_PROOF_HEADER + nl;
  if (extraBase64 !== undefined) text += `extra ${extraBase64}${nl}`;
  text += `index ${index}${nl}`;
  for (const h of proof) text += encode(h) + nl;
  return text + nl + checkpoint;
}

/**
 * Verifies a .tlog-proof for the entry whose RFC 6962 leaf hash is `leafHash`: the checkpoint
 * must be signed by `logVerifier` (key name = origin), the inclusion proof must lead to its
 * root, and, given a `policy`, the witness cosignatures must meet its quorum.
 * Throws NO_KNOWN_SIGNATURE / BAD_SIGNATURE (checkpoint signatures), OUT_OF_RANGE /
 * PROOF_LENGTH / PROOF_MISMATCH (inclusion), QUORUM_NOT_MET, MALFORMED, TOO_LARGE.
 */
export function verifyTlogProof(
  input: string | Uint8Array,
  leafHash: Uint8Array,
  logVerifier: NoteVerifier,
  options: { policy?: Policy } = {},
): VerifiedTlogProof {
  const p = parseTlogProof(input);
  const opened = openCheckpoint(p.checkpoint, logVerifier);
  const { checkpoint } = opened;
  verifyInclusion(p.index, checkpoint.size, leafHash, p.proof, checkpoint.rootHash);
  let signatures = opened.signatures;
  let witnesses: ReadonlySet<string> | undefined;
  if (options.policy !== undefined) {
    const q = verifyQuorum(options.policy, p.checkpoint);
    witnesses = q.witnesses;
    signatures = [...signatures, ...q.signatures];
  }
  return {
    index: p.index,
    ...(p.extra === undefined ? {} : { extra: p.extra }),
    checkpoint,
    signatures,
    ...(witnesses === undefined ? {} : { witnesses }),
  };
}
