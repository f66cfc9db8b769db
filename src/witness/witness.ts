/**
 * @module
 * A C2SP tlog-witness: for each log it trusts it remembers the latest checkpoint it cosigned,
 * and cosigns a new one only if it provably extends that one. The checks run in the spec's order
 * (add-checkpoint): parse → unknown origin 404 → no valid trusted signature 403 → old > size 400
 * → old ≠ stored size 409 (with the stored size) → proof from 0 not empty, or a bad consistency
 * proof, or a size-0 checkpoint with another root 422 → same size with another root 409 → store
 * (compare-and-swap, durable) → 200 with the cosignature.
 *
 * Checks and the store run under a per-origin lock, so concurrent requests cannot roll a log
 * back (the race the spec describes). A validly signed checkpoint that conflicts with the stored
 * one is kept as evidence of a misbehaving log.
 */

import { randomBytes } from "node:crypto";
import { Encoder } from "cbor-x";
import { base64Decode, bytesEqual, parseDecimal, putUint64, utf8Decode } from "../core/bytes.js";
import { type Checkpoint, parseCheckpoint } from "../core/checkpoint.js";
import { cosignatureLine, cosignerFromSeed } from "../core/cosignature.js";
import { sha256 } from "../core/crypto.js";
import { VellumError } from "../core/errors.js";
import type { Cosigner, NoteVerifier } from "../core/keys.js";
import { parseNote, verifyKnownSignatures } from "../core/note.js";
import { EMPTY_ROOT, HASH_SIZE } from "../core/rfc6962.js";
import { verifyConsistency } from "../core/verify.js";
import type { KeyValueStore } from "../storage/types.js";

/** Largest add-checkpoint body accepted (a checkpoint with many signatures, plus 63 hashes). */
export const MAX_REQUEST_SIZE = 64 * 1024;
export const MAX_PROOF_LINES = 63;

export type AddCheckpointResult =
  | { readonly status: 200; readonly body: string }
  | { readonly status: 409; readonly size: number; readonly reason: string }
  | { readonly status: 400 | 403 | 404 | 422; readonly reason: string };

export interface WitnessState {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The cosigned checkpoint: the log's note with this witness's cosignature appended. */
  readonly note: string;
  readonly time: number;
}

export interface Evidence {
  readonly time: number;
  readonly origin: string;
  readonly reason: string;
  /** The request body as received: a checkpoint validly signed by the log, plus its proof. */
  readonly request: string;
  /** What the witness had cosigned before, which the request contradicts. */
  readonly cosigned: string;
}

/** Trusted logs: origin → verifiers of that log's checkpoint signatures. */
export type TrustedLogs = ReadonlyMap<string, readonly NoteVerifier[]>;

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const enc = new TextEncoder();

const stateKey = (origin: string) => Uint8Array.from([0x6c, ...sha256(enc.encode(origin))]);
const EVIDENCE = { gte: Uint8Array.of(0x78), lt: Uint8Array.of(0x79) };

export interface WitnessConfig {
  /** The witness's key name, e.g. `witness.example/w1`. */
  readonly name: string;
  readonly seed: Uint8Array;
  readonly kv: KeyValueStore;
  readonly trusted: TrustedLogs;
  /** Milliseconds since the epoch. */
  readonly clock?: () => number;
  /** Called when a validly signed, conflicting checkpoint is refused. */
  readonly onEvidence?: (evidence: Evidence) => void;
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
  readonly #kv: KeyValueStore;
  readonly #clock: () => number;
  readonly #onEvidence: ((e: Evidence) => void) | undefined;
  #trusted: TrustedLogs;
  readonly #locks = new Map<string, Promise<unknown>>();
  /** Conflicting checkpoints kept as evidence since this process started. */
  evidenceKept = 0;

  constructor(config: WitnessConfig) {
    this.name = config.name;
    this.#cosigner = cosignerFromSeed(config.name, config.seed, 0);
    this.#kv = config.kv;
    this.#trusted = config.trusted;
    this.#clock = config.clock ?? Date.now;
    this.#onEvidence = config.onEvidence;
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

  async latest(origin: string): Promise<WitnessState | undefined> {
    const bytes = await this.#kv.get(stateKey(origin));
    return bytes === undefined ? undefined : (cbor.decode(bytes) as WitnessState);
  }

  async evidence(limit = 100): Promise<Evidence[]> {
    const rows = await this.#kv.range({ ...EVIDENCE, reverse: true, limit });
    return rows.map(([, v]) => cbor.decode(v) as Evidence);
  }

  async addCheckpoint(body: Uint8Array | string): Promise<AddCheckpointResult> {
    try {
      if (body.length > MAX_REQUEST_SIZE)
        throw new Refusal(400, `the body exceeds ${MAX_REQUEST_SIZE} bytes`);
      const request = parseAddCheckpoint(body);
      const { checkpoint, verified } = this.#open(request.note);
      return await this.#locked(checkpoint.origin, () =>
        this.#add(request, checkpoint, verified, body),
      );
    } catch (e) {
      if (e instanceof Refusal) return { status: e.status, reason: e.message };
      if (
        e instanceof VellumError &&
        (e.code === "MALFORMED" || e.code === "OUT_OF_RANGE" || e.code === "TOO_LARGE")
      ) {
        return { status: 400, reason: e.message };
      }
      throw e;
    }
  }

  #open(note: string): { checkpoint: Checkpoint; verified: string } {
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
    let ok = false;
    try {
      ok = verifyKnownSignatures(parsed, verifiers).signatures.length > 0;
    } catch {
      ok = false;
    }
    if (!ok) throw new Refusal(403, "no valid signature from a key trusted for this log");
    return { checkpoint, verified: parsed.text };
  }

  #locked<T>(origin: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(origin) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#locks.set(origin, tail);
    void tail.then(() => {
      if (this.#locks.get(origin) === tail) this.#locks.delete(origin);
    });
    return run;
  }

  async #add(
    request: ParsedRequest,
    checkpoint: Checkpoint,
    text: string,
    body: Uint8Array | string,
  ): Promise<AddCheckpointResult> {
    const { old, proof } = request;
    const size = checkpoint.size;
    if (old > size)
      throw new Refusal(400, `old size ${old} is larger than the checkpoint's size ${size}`);
    const stored = await this.latest(checkpoint.origin);
    const storedSize = stored?.size ?? 0;
    if (old !== storedSize) {
      return {
        status: 409,
        size: storedSize,
        reason: `the witness's latest size is ${storedSize}, not ${old}`,
      };
    }
    const conflict = async (status: 409 | 422, reason: string): Promise<AddCheckpointResult> => {
      if (stored !== undefined)
        await this.#keepEvidence(checkpoint.origin, reason, body, stored.note);
      return status === 409 ? { status, size: storedSize, reason } : { status, reason };
    };
    if (old === 0) {
      if (proof.length > 0) return conflict(422, "a consistency proof from size 0 must be empty");
      if (size === 0 && !bytesEqual(checkpoint.rootHash, EMPTY_ROOT)) {
        return conflict(422, "a checkpoint of size 0 must have the empty tree's root");
      }
    } else if (old === size) {
      if (!bytesEqual(checkpoint.rootHash, stored!.rootHash)) {
        return conflict(409, `a different root for size ${size} than the one already cosigned`);
      }
      if (proof.length > 0)
        return conflict(422, "a consistency proof between equal sizes must be empty");
    } else {
      try {
        verifyConsistency(old, size, proof, stored!.rootHash, checkpoint.rootHash);
      } catch (e) {
        return conflict(
          422,
          `the consistency proof from ${old} does not verify: ${(e as Error).message}`,
        );
      }
    }

    // Cosignature times never go backwards for a log, even if the clock does.
    const time = Math.max(Math.floor(this.#clock() / 1000), stored?.time ?? 0);
    const line = cosignatureLine(text, this.#cosigner.at(time));
    const noteWithCosignature = request.note + line;
    const next: WitnessState = {
      origin: checkpoint.origin,
      size,
      rootHash: checkpoint.rootHash,
      note: noteWithCosignature,
      time,
    };
    // Compare-and-swap: the lock makes read-check-write atomic for this origin in this process;
    // the write is synced before the answer.
    await this.#kv.write([
      { type: "put", key: stateKey(checkpoint.origin), value: cbor.encode(next) },
    ]);
    return { status: 200, body: line };
  }

  async #keepEvidence(origin: string, reason: string, body: Uint8Array | string, cosigned: string) {
    const time = this.#clock();
    const request = typeof body === "string" ? body : utf8Decode(body);
    const evidence: Evidence = { time, origin, reason, request, cosigned };
    // "x" u64 time u32 random: newest last in key order, no two alike.
    const key = new Uint8Array(1 + 8 + 4);
    key[0] = 0x78;
    putUint64(key, 1, time);
    key.set(randomBytes(4), 9);
    await this.#kv.write([{ type: "put", key, value: cbor.encode(evidence) }]);
    this.evidenceKept++;
    this.#onEvidence?.(evidence);
  }
}
