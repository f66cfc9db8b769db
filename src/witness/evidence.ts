/**
 * @module
 * The evidence a witness keeps against a log: only conflicts that prove the log misbehaved, each
 * stored once, a bounded number per log (spec/witness.md, "Evidence").
 *
 * Invariant: every stored record holds checkpoints signed by the log's key that cannot all be
 * honest, and proves so to anyone with the log's verifier key and nothing else
 * ({@link checkEvidence}). A refused request that proves nothing (a junk consistency proof, the
 * witness's own public checkpoint sent back) stores nothing, so nobody without the log's key can
 * make the witness's storage grow. The three provable conflicts:
 * - "empty-root": a checkpoint of size 0 whose root is not SHA-256("") (one checkpoint suffices);
 * - "fork": two checkpoints of the same size with different roots;
 * - "inconsistent": a consistency proof from the cosigned size m (not a power of two) whose
 *   hashes compute the new checkpoint's root but a size-m root other than the cosigned one. Hashes
 *   that compute a signed root are that tree's own nodes (short of a SHA-256 collision), so the log
 *   signed a tree whose first m leaves are not the tree it signed for m. When m is a power of two
 *   the old root is not computed from the proof, and a bad proof proves nothing.
 *
 * Records are keyed by origin and by what the conflict is (its kind, sizes and roots), so a log
 * sending the same fork again stores nothing new; at most `perLog` records per origin and
 * `maxBytes` per record are kept (the first ones: one proof is enough), and whatever is refused is
 * counted by the caller.
 */
import { Encoder } from "cbor-x";
import { base64Decode, base64Encode, bytesEqual, utf8Encode } from "../core/bytes.js";
import { type Checkpoint, parseCheckpoint } from "../core/checkpoint.js";
import { sha256 } from "../core/crypto.js";
import { check } from "../core/errors.js";
import type { NoteVerifier } from "../core/keys.js";
import { verifyNote } from "../core/note.js";
import { EMPTY_ROOT } from "../core/rfc6962.js";
import { rootsFromConsistencyProof } from "../core/verify.js";
import type { KeyValueStore } from "../storage/types.js";

export type ConflictKind = "empty-root" | "fork" | "inconsistent";

/** A stored evidence record, as listed at `GET /v1/evidence`. */
export interface Evidence {
  readonly kind: ConflictKind;
  /** Milliseconds since the epoch when this witness first saw the conflict. */
  readonly time: number;
  readonly origin: string;
  readonly reason: string;
  /** The conflicting checkpoint, with only the signatures by the log's trusted keys. */
  readonly checkpoint: string;
  /** "fork", "inconsistent": what this witness had cosigned (the log's signatures and its own). */
  readonly cosigned?: string;
  /** "inconsistent": the consistency proof (base64 hashes) from `cosigned` to `checkpoint`. */
  readonly proof?: readonly string[];
}

/** What {@link findConflict} reports: the kind and a one-line reason. */
export interface Conflict {
  readonly kind: ConflictKind;
  readonly reason: string;
}

/** What became of a provable conflict: stored, or why not. */
export type EvidenceOutcome = "kept" | "duplicate" | "limit" | "too-large";

export interface EvidenceLimits {
  /** Records kept per origin; further conflicts are refused ("limit"). */
  readonly perLog: number;
  /** Encoded size of one record; a larger one is refused ("too-large"). */
  readonly maxBytes: number;
}

export const DEFAULT_EVIDENCE_LIMITS: EvidenceLimits = { perLog: 100, maxBytes: 16 * 1024 };

/**
 * The provable conflict between a checkpoint the log signed (`checkpoint`, sent with `old` and
 * `proof`) and the one this witness cosigned for the log (`cosigned`, if any), or undefined when
 * they do not prove misbehaviour (including when they agree).
 */
export function findConflict(
  cosigned: { readonly size: number; readonly rootHash: Uint8Array } | undefined,
  checkpoint: Checkpoint,
  old: number,
  proof: readonly Uint8Array[],
): Conflict | undefined {
  const { size, rootHash } = checkpoint;
  if (size === 0 && !bytesEqual(rootHash, EMPTY_ROOT)) {
    return {
      kind: "empty-root",
      reason: "a checkpoint of size 0 with a root other than the empty tree's",
    };
  }
  if (cosigned === undefined) return undefined;
  if (size === cosigned.size && !bytesEqual(rootHash, cosigned.rootHash)) {
    return { kind: "fork", reason: `a second root for size ${size}, which this witness cosigned` };
  }
  if (old === cosigned.size && old > 0 && old < size) {
    let roots: ReturnType<typeof rootsFromConsistencyProof>;
    try {
      roots = rootsFromConsistencyProof(old, size, proof, cosigned.rootHash);
    } catch {
      return undefined; // not even the shape of a proof for these sizes
    }
    if (bytesEqual(roots.new, rootHash) && !bytesEqual(roots.old, cosigned.rootHash)) {
      return {
        kind: "inconsistent",
        reason: `the tree of size ${size} does not extend the cosigned tree of size ${old}`,
      };
    }
  }
  return undefined;
}

/**
 * Throws unless `evidence` proves, with the log's keys alone, that the log signed checkpoints that
 * cannot all be honest; returns the kind. The check a third party runs on a record.
 */
export function checkEvidence(
  evidence: Evidence,
  logVerifiers: readonly NoteVerifier[],
): ConflictKind {
  const open = (note: string, what: string): Checkpoint => {
    const verified = verifyNote(note, logVerifiers);
    const cp = parseCheckpoint(verified.text);
    check(cp.origin === evidence.origin, "MALFORMED", `${what} is for another origin`);
    return cp;
  };
  const cp = open(evidence.checkpoint, "the conflicting checkpoint");
  if (evidence.kind === "empty-root") {
    check(
      findConflict(undefined, cp, 0, [])?.kind === "empty-root",
      "PROOF_MISMATCH",
      "the checkpoint is not of size 0 with another root",
    );
    return "empty-root";
  }
  check(
    evidence.cosigned !== undefined,
    "MALFORMED",
    `${evidence.kind} evidence needs both checkpoints`,
  );
  const before = open(evidence.cosigned, "the cosigned checkpoint");
  const proof = (evidence.proof ?? []).map((h, i) => base64Decode(h, `proof hash ${i + 1}`));
  const found = findConflict(before, cp, before.size, proof);
  check(
    found?.kind === evidence.kind,
    "PROOF_MISMATCH",
    `the checkpoints prove no ${evidence.kind}`,
  );
  return evidence.kind;
}

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });

// Keys (in the witness's namespace): "e" ‖ SHA-256(origin) ‖ conflict id → record;
// "n" ‖ SHA-256(origin) → number of records for that origin (u32, big-endian).
const RECORD = 0x65;
const COUNT = 0x6e;

const originHash = (origin: string) => sha256(utf8Encode(origin));
const prefixed = (tag: number, ...parts: Uint8Array[]) => {
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  out[0] = tag;
  let at = 1;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** What the conflict is, independent of when or how often it was sent. */
function conflictId(
  kind: ConflictKind,
  cosigned: Checkpoint | undefined,
  cp: Checkpoint,
): Uint8Array {
  const b64 = base64Encode;
  const parts =
    kind === "empty-root"
      ? [kind, b64(cp.rootHash)]
      : kind === "fork"
        ? [kind, cp.size, ...[b64(cosigned!.rootHash), b64(cp.rootHash)].sort()]
        : [kind, cosigned!.size, b64(cosigned!.rootHash), cp.size, b64(cp.rootHash)];
  return sha256(utf8Encode(parts.join("\n")));
}

/** The evidence records of one witness. Callers serialize `keep` per origin (the witness's lock). */
export class EvidenceStore {
  readonly #kv: KeyValueStore;
  readonly #limits: EvidenceLimits;

  constructor(kv: KeyValueStore, limits: EvidenceLimits = DEFAULT_EVIDENCE_LIMITS) {
    this.#kv = kv;
    this.#limits = limits;
  }

  get limits(): EvidenceLimits {
    return this.#limits;
  }

  /**
   * Stores `evidence` unless the same conflict is stored, the origin has `perLog` records, or the
   * record exceeds `maxBytes`. The record and the origin's count are one atomic write.
   */
  async keep(evidence: Evidence): Promise<EvidenceOutcome> {
    const cp = parseCheckpoint(splitText(evidence.checkpoint));
    const cosigned =
      evidence.cosigned === undefined ? undefined : parseCheckpoint(splitText(evidence.cosigned));
    const oh = originHash(evidence.origin);
    const key = prefixed(RECORD, oh, conflictId(evidence.kind, cosigned, cp));
    const countKey = prefixed(COUNT, oh);
    const [existing, countBytes] = await this.#kv.getMany([key, countKey]);
    if (existing !== undefined) return "duplicate";
    const count =
      countBytes === undefined
        ? 0
        : new DataView(countBytes.buffer, countBytes.byteOffset).getUint32(0);
    if (count >= this.#limits.perLog) return "limit";
    const value = cbor.encode(evidence);
    if (value.length > this.#limits.maxBytes) return "too-large";
    const next = new Uint8Array(4);
    new DataView(next.buffer).setUint32(0, count + 1);
    await this.#kv.write([
      { type: "put", key, value },
      { type: "put", key: countKey, value: next },
    ]);
    return "kept";
  }

  /** Up to `limit` records, newest first; of one origin if given. */
  async list(limit = 100, origin?: string): Promise<Evidence[]> {
    const gte = origin === undefined ? Uint8Array.of(RECORD) : prefixed(RECORD, originHash(origin));
    const rows = await this.#kv.range({
      gte,
      lt: prefixEnd(gte),
      limit: origin === undefined ? limit : this.#limits.perLog,
    });
    return rows
      .map(([, v]) => cbor.decode(v) as Evidence)
      .sort((a, b) => b.time - a.time)
      .slice(0, limit);
  }
}

/** The least key above every key that starts with `prefix` (a prefix of 0xff bytes has none). */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  check(n > 0, "INTERNAL", "a key prefix of 0xff bytes has no end");
  const end = prefix.slice(0, n);
  end[n - 1]!++;
  return end;
}

/** The checkpoint text of a signed note (everything up to and including the blank line's "\n"). */
function splitText(note: string): string {
  return note.slice(0, note.lastIndexOf("\n\n") + 1);
}
