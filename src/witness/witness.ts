/**
 * @module
 * A C2SP tlog-witness: for each log it trusts it remembers the latest checkpoint it cosigned,
 * and cosigns a new one only if it provably extends that one. The checks run in the spec's order
 * (add-checkpoint): parse → unknown origin 404 → no valid trusted signature 403 → old > size 400
 * → old ≠ stored size 409 (with the stored size) → proof from 0 not empty, or a bad consistency
 * proof, or a size-0 checkpoint with another root 422 → same size with another root 409 → store
 * (compare-and-swap, durable) → 200 with the cosignature.
 *
 * Fail-stop (./fail-stop.ts): after a failed write nothing is answered from storage (503) until
 * the store has been reopened and the state re-read; a request that spans a failure is never
 * answered 200.
 *
 * Checks and the store run under a per-origin lock, so concurrent requests cannot roll a log
 * back (the race the spec describes). A refused checkpoint is kept as evidence only when it and
 * what the witness cosigned prove the log misbehaved (./evidence.ts); a refusal that proves
 * nothing stores nothing.
 *
 * Over 400 lines: the add-checkpoint checks in the spec's order, with their refusals, are one
 * sequence best read in one place (evidence and fail-stop are their own files).
 */

import { Encoder } from "cbor-x";
import { base64Decode, base64Encode, bytesEqual, parseDecimal, utf8Decode } from "../core/bytes.js";
import { type Checkpoint, parseCheckpoint } from "../core/checkpoint.js";
import {
  cosignatureLine,
  cosignatureVerifierFromKey,
  cosignerFromSeed,
} from "../core/cosignature.js";
import { sha256 } from "../core/crypto.js";
import { VellumError } from "../core/errors.js";
import type { Cosigner, NoteVerifier } from "../core/keys.js";
import type { Logger } from "../core/logger.js";
import { KeyedMutex } from "../core/mutex.js";
import { formatNote, type NoteSignature, parseNote, verifyKnownSignatures } from "../core/note.js";
import { EMPTY_ROOT, HASH_SIZE } from "../core/rfc6962.js";
import { verifyConsistency } from "../core/verify.js";
import type { StorageFailureClass } from "../storage/failure.js";
import type { KeyValueStore } from "../storage/types.js";
import {
  DEFAULT_EVIDENCE_LIMITS,
  type Evidence,
  type EvidenceLimits,
  type EvidenceOutcome,
  EvidenceStore,
  findConflict,
} from "./evidence.js";
import { FailStop, type StorageFailureInfo, StorageUnavailable } from "./fail-stop.js";

export type { Evidence, EvidenceOutcome } from "./evidence.js";
export type { StorageFailureInfo } from "./fail-stop.js";

/** Largest add-checkpoint body accepted (a checkpoint with many signatures, plus 63 hashes). */
export const MAX_REQUEST_SIZE = 64 * 1024;
export const MAX_PROOF_LINES = 63;

export type AddCheckpointResult =
  | { readonly status: 200; readonly body: string }
  | { readonly status: 409; readonly size: number; readonly reason: string }
  | { readonly status: 400 | 403 | 404 | 422; readonly reason: string }
  | { readonly status: 503; readonly reason: string; readonly failure: StorageFailureClass };

export interface WitnessState {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The cosigned checkpoint: the log's note with this witness's cosignature appended. */
  readonly note: string;
  readonly time: number;
}

/** Trusted logs: origin → verifiers of that log's checkpoint signatures. */
export type TrustedLogs = ReadonlyMap<string, readonly NoteVerifier[]>;

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const enc = new TextEncoder();

// Keys: "l" ‖ SHA-256(origin) → the cosigned state; evidence under "e" and "n" (./evidence.ts).
// Versions before provable-only evidence kept every conflict under "x"; those records are left
// in place and no longer listed.
const stateKey = (origin: string) => Uint8Array.from([0x6c, ...sha256(enc.encode(origin))]);

/**
 * A copy of each log's cosigned state kept outside the witness's data directory (rollback
 * protection: `vellum witness --state-mirror`). While it cannot be written, the witness cosigns
 * nothing (a 503, like a storage failure): a restored backup could otherwise go unnoticed.
 */
export interface CosignedMirror {
  /** Why cosigning must wait (the mirror could not be brought up to date), or undefined. */
  readonly failure: StorageFailureInfo | undefined;
  /** A new cosigned state, durably stored: the mirror catches up with it (asynchronously). */
  update(state: WitnessState): void;
}

export interface WitnessConfig {
  /** The witness's key name, e.g. `witness.example/w1`. */
  readonly name: string;
  readonly seed: Uint8Array;
  readonly kv: KeyValueStore;
  readonly trusted: TrustedLogs;
  /** Milliseconds since the epoch. */
  readonly clock?: () => number;
  /** Bounds on stored evidence (default: 100 records per log, 16 KiB each). */
  readonly evidenceLimits?: EvidenceLimits;
  /** Called for each provable conflict, with whether it was stored or why not. */
  readonly onEvidence?: (evidence: Evidence, outcome: EvidenceOutcome) => void;
  /** First and longest wait between attempts to reopen a failed store (default 100 ms, 5 s). */
  readonly recoverBackoffMs?: readonly [first: number, max: number];
  /** Where storage failures and recoveries are reported (default: nowhere). */
  readonly logger?: Logger;
  /** The state mirror outside the data directory, if any. */
  readonly mirror?: CosignedMirror;
}

/** Counters since this process started (the witness's /metrics). */
export interface EvidenceStats {
  /** Provable conflicts stored. */
  kept: number;
  /** Provable conflicts already stored (sent again). */
  duplicate: number;
  /** Provable conflicts not stored: the log already has the maximum number of records. */
  limit: number;
  /** Provable conflicts not stored: the record would exceed the size bound. */
  tooLarge: number;
  /** 422 refusals of validly signed checkpoints that prove nothing (nothing stored). */
  unprovable: number;
}

interface ParsedRequest {
  readonly old: number;
  readonly proof: Uint8Array[];
  readonly note: string;
}

class Refusal extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 422,
    message: string,
  ) {
    super(message);
  }
}

/** Parses an add-checkpoint body: `old N`, up to 63 base64 hashes, an empty line, the note. */
export function parseAddCheckpoint(body: Uint8Array | string): ParsedRequest {
  const text = typeof body === "string" ? body : utf8Decode(body, "request body");
  const m = /^old (0|[1-9][0-9]*)\n/.exec(text);
  if (m === null) throw new Refusal(400, 'the body must start with "old <size>\\n"');
  const old = parseDecimal(m[1]!, "old size");
  let at = m[0].length;
  const proof: Uint8Array[] = [];
  for (;;) {
    const end = text.indexOf("\n", at);
    if (end < 0) throw new Refusal(400, "missing the empty line before the checkpoint");
    const line = text.slice(at, end);
    at = end + 1;
    if (line === "") break;
    if (proof.length === MAX_PROOF_LINES)
      throw new Refusal(400, `more than ${MAX_PROOF_LINES} proof lines`);
    const hash = base64Decode(line, `proof line ${proof.length + 1}`);
    if (hash.length !== HASH_SIZE)
      throw new Refusal(400, `proof line ${proof.length + 1} is not a 32-byte hash`);
    proof.push(hash);
  }
  return { old, proof, note: text.slice(at) };
}

export class Witness {
  readonly name: string;
  readonly #cosigner: Cosigner;
  /** The store, with reads and writes through the fail-stop guard. */
  readonly #kv: KeyValueStore;
  readonly #failStop: FailStop;
  readonly #clock: () => number;
  readonly #onEvidence: ((e: Evidence, outcome: EvidenceOutcome) => void) | undefined;
  readonly #evidence: EvidenceStore;
  readonly #self: NoteVerifier;
  #trusted: TrustedLogs;
  /** One check-and-cosign at a time per origin. */
  readonly #locks = new KeyedMutex<string>();
  readonly #mirror: CosignedMirror | undefined;
  readonly evidenceStats: EvidenceStats = {
    kept: 0,
    duplicate: 0,
    limit: 0,
    tooLarge: 0,
    unprovable: 0,
  };

  constructor(config: WitnessConfig) {
    this.name = config.name;
    this.#cosigner = cosignerFromSeed(config.name, config.seed, 0);
    this.#failStop = new FailStop(config.kv, () => this.#reload(config.kv), {
      ...(config.recoverBackoffMs === undefined ? {} : { backoffMs: config.recoverBackoffMs }),
      ...(config.logger === undefined ? {} : { logger: config.logger }),
    });
    this.#kv = this.#failStop.guarded();
    this.#trusted = config.trusted;
    this.#clock = config.clock ?? Date.now;
    this.#onEvidence = config.onEvidence;
    this.#evidence = new EvidenceStore(this.#kv, config.evidenceLimits ?? DEFAULT_EVIDENCE_LIMITS);
    this.#self = cosignatureVerifierFromKey(this.#cosigner.verifierKey);
    this.#mirror = config.mirror;
  }

  /** The witness's cosigner verifier key (type 0x04): what logs and clients put in policies. */
  get verifierKey(): string {
    return this.#cosigner.verifierKey;
  }

  get trustedOrigins(): string[] {
    return [...this.#trusted.keys()].sort();
  }

  /** Replaces the trusted logs (config reload); in-flight requests finish with the old set. */
  setTrusted(trusted: TrustedLogs): void {
    this.#trusted = trusted;
  }

  /** The latest cosigned state for `origin`. Throws StorageUnavailable while storage is failing. */
  async latest(origin: string): Promise<WitnessState | undefined> {
    this.#failStop.check();
    return readState(this.#kv, origin);
  }

  /** Stored evidence: up to `limit` records, newest first; all of one log's if `origin` given. */
  evidence(limit = 100, origin?: string): Promise<Evidence[]> {
    this.#failStop.check();
    return this.#evidence.list(limit, origin);
  }

  /** The storage failure that stops the witness, or undefined while storage is usable. */
  get storageFailure(): StorageFailureInfo | undefined {
    return this.#failStop.failure;
  }

  /** Failed storage reads and writes since start. */
  get storageFailures(): { readonly reads: number; readonly writes: number } {
    return { reads: this.#failStop.failedReads, writes: this.#failStop.failedWrites };
  }

  /** Stops retrying to reopen a failed store (at shutdown). */
  close(): void {
    this.#failStop.close();
  }

  /**
   * After the store was reopened: re-reads every trusted log's state from it (the witness keeps
   * no state in memory; this checks that each record is there to be read and decodes).
   */
  async #reload(kv: KeyValueStore): Promise<void> {
    for (const origin of this.trustedOrigins) await readState(kv, origin);
  }

  get evidenceLimits(): EvidenceLimits {
    return this.#evidence.limits;
  }

  /** Provable conflicts stored since this process started. */
  get evidenceKept(): number {
    return this.evidenceStats.kept;
  }

  async addCheckpoint(body: Uint8Array | string): Promise<AddCheckpointResult> {
    try {
      if (body.length > MAX_REQUEST_SIZE)
        throw new Refusal(400, `the body exceeds ${MAX_REQUEST_SIZE} bytes`);
      const request = parseAddCheckpoint(body);
      const opened = this.#open(request.note);
      this.#failStop.check();
      return await this.#locks.run(opened.checkpoint.origin, () => this.#add(request, opened));
    } catch (e) {
      if (e instanceof Refusal) return { status: e.status, reason: e.message };
      if (e instanceof StorageUnavailable)
        return { status: 503, reason: e.message, failure: e.failure.class };
      if (
        e instanceof VellumError &&
        (e.code === "MALFORMED" || e.code === "OUT_OF_RANGE" || e.code === "TOO_LARGE")
      ) {
        return { status: 400, reason: e.message };
      }
      throw e;
    }
  }

  #open(note: string): Opened {
    let parsed: ReturnType<typeof parseNote>;
    let checkpoint: Checkpoint;
    try {
      parsed = parseNote(note);
      checkpoint = parseCheckpoint(parsed.text);
    } catch (e) {
      throw new Refusal(400, `not a checkpoint: ${(e as Error).message}`);
    }
    const verifiers = this.#trusted.get(checkpoint.origin);
    if (verifiers === undefined)
      throw new Refusal(404, `unknown log origin "${checkpoint.origin.slice(0, 100)}"`);
    let signatures: readonly NoteSignature[] = [];
    try {
      signatures = verifyKnownSignatures(parsed, verifiers).signatures;
    } catch {
      signatures = [];
    }
    if (signatures.length === 0)
      throw new Refusal(403, "no valid signature from a key trusted for this log");
    return { checkpoint, text: parsed.text, signatures, verifiers };
  }

  async #add(request: ParsedRequest, opened: Opened): Promise<AddCheckpointResult> {
    const { checkpoint } = opened;
    // Everything below must happen within one storage epoch: no failure, no recovery in between.
    const epoch = this.#failStop.epoch;
    this.#failStop.check(epoch);
    const stored = await readState(this.#kv, checkpoint.origin);
    const refused = refusal(request, checkpoint, stored);
    if (refused !== undefined) {
      await this.#judge(request, opened, stored, refused);
      return refused;
    }

    // Cosignature times never go backwards for a log, even if the clock does.
    const time = Math.max(Math.floor(this.#clock() / 1000), stored?.time ?? 0);
    const line = cosignatureLine(opened.text, this.#cosigner.at(time));
    const next: WitnessState = {
      origin: checkpoint.origin,
      size: checkpoint.size,
      rootHash: checkpoint.rootHash,
      note: request.note + line,
      time,
    };
    // Compare-and-swap: the lock makes read-check-write atomic for this origin in this process;
    // the write is synced before the answer.
    this.#failStop.check(epoch);
    const held = this.#mirror?.failure;
    if (held !== undefined) throw new StorageUnavailable(held);
    await this.#kv.write([
      { type: "put", key: stateKey(checkpoint.origin), value: cbor.encode(next) },
    ]);
    // A write that resolved while another failed (or after a recovery) is not acknowledged.
    this.#failStop.check(epoch);
    this.#mirror?.update(next);
    return { status: 200, body: line };
  }

  /**
   * For a refused, validly signed checkpoint: stores evidence if it and the cosigned state prove
   * the log misbehaved (once per conflict, within the bounds), and counts what happened.
   */
  async #judge(
    request: ParsedRequest,
    opened: Opened,
    stored: WitnessState | undefined,
    refused: AddCheckpointResult,
  ): Promise<void> {
    const { checkpoint } = opened;
    const conflict = findConflict(stored, checkpoint, request.old, request.proof);
    // Both notes must carry a signature by a key trusted for the log now (the state's may be by
    // a key since removed); only those signatures, and this witness's own, are kept.
    const cosigned =
      conflict === undefined || conflict.kind === "empty-root" || stored === undefined
        ? undefined
        : this.#reduce(stored.note, [...opened.verifiers, this.#self], opened.verifiers);
    if (conflict === undefined || (conflict.kind !== "empty-root" && cosigned === undefined)) {
      if (refused.status === 422) this.evidenceStats.unprovable++;
      return;
    }
    const evidence: Evidence = {
      kind: conflict.kind,
      time: this.#clock(),
      origin: checkpoint.origin,
      reason: conflict.reason,
      checkpoint: formatNote({ text: opened.text, signatures: opened.signatures.map(bare) }),
      ...(cosigned === undefined ? {} : { cosigned }),
      ...(conflict.kind === "inconsistent" ? { proof: request.proof.map(base64Encode) } : {}),
    };
    const outcome = await this.#evidence.keep(evidence);
    this.evidenceStats[outcome === "too-large" ? "tooLarge" : outcome]++;
    this.#onEvidence?.(evidence, outcome);
  }

  /**
   * `note` with only the signatures by `keep` that verify, or undefined unless one of them is by
   * a key in `required`.
   */
  #reduce(
    note: string,
    keep: readonly NoteVerifier[],
    required: readonly NoteVerifier[],
  ): string | undefined {
    try {
      const { text, signatures } = verifyKnownSignatures(note, keep);
      if (!signatures.some((s) => required.includes(s.verifier))) return undefined;
      return formatNote({ text, signatures: signatures.map(bare) });
    } catch {
      return undefined;
    }
  }
}

/** The state stored for `origin`; INTEGRITY_FAILURE if the record is not a state. */
async function readState(kv: KeyValueStore, origin: string): Promise<WitnessState | undefined> {
  const bytes = await kv.get(stateKey(origin));
  if (bytes === undefined) return undefined;
  let state: WitnessState | undefined;
  try {
    state = cbor.decode(bytes) as WitnessState;
  } catch {
    state = undefined;
  }
  if (
    typeof state?.size !== "number" ||
    !(state.rootHash instanceof Uint8Array) ||
    state.rootHash.length !== HASH_SIZE ||
    typeof state.note !== "string" ||
    state.origin !== origin
  ) {
    throw new VellumError(
      "INTEGRITY_FAILURE",
      `Corruption: the stored witness state for "${origin}" does not decode`,
    );
  }
  return state;
}

interface Opened {
  readonly checkpoint: Checkpoint;
  /** The checkpoint text exactly as signed. */
  readonly text: string;
  /** The signatures by keys trusted for the log that verified (at least one). */
  readonly signatures: readonly NoteSignature[];
  readonly verifiers: readonly NoteVerifier[];
}

const bare = (s: NoteSignature): NoteSignature => ({
  name: s.name,
  keyId: s.keyId,
  signature: s.signature,
});

/**
 * The spec's answer for a validly signed checkpoint that may not be cosigned, in the spec's order,
 * or undefined if it extends the cosigned state (`stored`, if any).
 */
function refusal(
  request: ParsedRequest,
  checkpoint: Checkpoint,
  stored: WitnessState | undefined,
): AddCheckpointResult | undefined {
  const { old, proof } = request;
  const size = checkpoint.size;
  if (old > size)
    return { status: 400, reason: `old size ${old} is larger than the checkpoint's size ${size}` };
  const storedSize = stored?.size ?? 0;
  if (old !== storedSize) {
    return {
      status: 409,
      size: storedSize,
      reason: `the witness's latest size is ${storedSize}, not ${old}`,
    };
  }
  if (old === 0) {
    if (proof.length > 0)
      return { status: 422, reason: "a consistency proof from size 0 must be empty" };
    if (size === 0 && !bytesEqual(checkpoint.rootHash, EMPTY_ROOT))
      return { status: 422, reason: "a checkpoint of size 0 must have the empty tree's root" };
  } else if (old === size) {
    if (!bytesEqual(checkpoint.rootHash, stored!.rootHash)) {
      return {
        status: 409,
        size: storedSize,
        reason: `a different root for size ${size} than the one already cosigned`,
      };
    }
    if (proof.length > 0)
      return { status: 422, reason: "a consistency proof between equal sizes must be empty" };
  } else {
    try {
      verifyConsistency(old, size, proof, stored!.rootHash, checkpoint.rootHash);
    } catch (e) {
      return {
        status: 422,
        reason: `the consistency proof from ${old} does not verify: ${(e as Error).message}`,
      };
    }
  }
  return undefined;
}
