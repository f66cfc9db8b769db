/**
 * @module
 * A verifying client: it trusts a log's checkpoint only after checking the log's signature, the
 * witness quorum (given a policy) and that it is consistent with the last checkpoint it trusted.
 * Its memory is a pluggable store keyed by the log's verifier key — never by anything the server
 * says about itself. Any contradiction is an INCONSISTENT error carrying both signed checkpoints
 * and the proof, which a third party can re-check.
 */
import { base64Encode, bytesEqual } from "../core/bytes.js";
import { type Checkpoint, openCheckpoint } from "../core/checkpoint.js";
import { VellumError } from "../core/errors.js";
import { type NoteVerifier, verifierFromKey } from "../core/keys.js";
import { type Policy, parsePolicy, verifyQuorum, witnessVerifiers } from "../core/policy.js";
import { verifyConsistency, verifyInclusion } from "../core/verify.js";
import type { VellumClient } from "./http.js";

/** Where a verifying client keeps the last checkpoint it trusted, per log key. */
export interface TrustedStore {
  load(logKey: string): Promise<string | undefined>;
  save(logKey: string, checkpoint: string): Promise<void>;
}

export class MemoryTrustedStore implements TrustedStore {
  readonly #notes = new Map<string, string>();
  async load(logKey: string) {
    return this.#notes.get(logKey);
  }
  async save(logKey: string, checkpoint: string) {
    this.#notes.set(logKey, checkpoint);
  }
}

/** How proofs are obtained: from the server's JSON endpoints, or built from tiles. */
export interface ProofSource {
  consistencyProof(from: number, to: number): Promise<Uint8Array[]>;
  inclusionProof(index: number, size: number): Promise<Uint8Array[]>;
  checkpoint(): Promise<string>;
}

export interface SplitViewEvidence {
  readonly kind: "split-view" | "rollback" | "bad-consistency-proof";
  readonly logKey: string;
  /** The checkpoint trusted before (signed note text). */
  readonly trusted: string;
  /** The conflicting checkpoint (signed note text). */
  readonly offered: string;
  /** The consistency proof offered between them (base64), if any. */
  readonly proof: readonly string[];
  readonly detail: string;
}

export interface VerifyingClientOptions {
  readonly logKey: string;
  /** Witness policy (text or parsed): checkpoints must meet its quorum. */
  readonly policy?: string | Policy;
  readonly store?: TrustedStore;
  /** Defaults to the client's JSON proof endpoints; pass a tile-based source to avoid trusting them. */
  readonly proofs?: ProofSource;
}

export interface TrustedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: string;
}

export class VerifyingClient {
  readonly logKey: string;
  readonly #verifier: NoteVerifier;
  readonly #policy: Policy | undefined;
  readonly #store: TrustedStore;
  readonly #proofs: ProofSource;

  constructor(client: VellumClient, options: VerifyingClientOptions) {
    this.logKey = options.logKey;
    this.#verifier = verifierFromKey(options.logKey);
    this.#policy =
      typeof options.policy === "string" ? parsePolicy(options.policy) : options.policy;
    this.#store = options.store ?? new MemoryTrustedStore();
    this.#proofs = options.proofs ?? client;
  }

  /** Checks a signed checkpoint's signatures (log key; quorum if a policy is set). */
  open(note: string): Checkpoint {
    const witnesses =
      this.#policy === undefined ? [] : [...witnessVerifiers(this.#policy).values()];
    const { checkpoint } = openCheckpoint(note, this.#verifier, witnesses);
    if (this.#policy !== undefined) verifyQuorum(this.#policy, note);
    return checkpoint;
  }

  /** The last trusted checkpoint, if any. */
  async trusted(): Promise<TrustedCheckpoint | undefined> {
    const note = await this.#store.load(this.logKey);
    return note === undefined ? undefined : { checkpoint: this.open(note), note };
  }

  /**
   * Fetches the log's checkpoint and trusts it if it verifies and extends the last trusted one
   * (the first one is trusted on first use, unless the store was seeded).
   */
  async update(): Promise<TrustedCheckpoint> {
    return this.accept(await this.#proofs.checkpoint());
  }

  /** Verifies `note` against the trusted state and, if it is newer, makes it the trusted one. */
  async accept(note: string): Promise<TrustedCheckpoint> {
    const offered = this.open(note);
    const before = await this.trusted();
    if (before === undefined) {
      await this.#store.save(this.logKey, note);
      return { checkpoint: offered, note };
    }
    const old = before.checkpoint;
    const evidence = (kind: SplitViewEvidence["kind"], detail: string, proof: Uint8Array[] = []) =>
      new VellumError(
        "INCONSISTENT",
        `the log contradicts a checkpoint it signed before: ${detail}`,
        {
          evidence: {
            kind,
            logKey: this.logKey,
            trusted: before.note,
            offered: note,
            proof: proof.map(base64Encode),
            detail,
          } satisfies SplitViewEvidence,
        },
      );
    if (offered.size < old.size) {
      throw evidence(
        "rollback",
        `size ${offered.size} is smaller than the trusted size ${old.size}`,
      );
    }
    if (offered.size === old.size) {
      if (!bytesEqual(offered.rootHash, old.rootHash)) {
        throw evidence("split-view", `two different roots for size ${old.size}`);
      }
      return before;
    }
    const proof = await this.#proofs.consistencyProof(old.size, offered.size);
    try {
      verifyConsistency(old.size, offered.size, proof, old.rootHash, offered.rootHash);
    } catch (e) {
      throw evidence(
        "bad-consistency-proof",
        `no valid consistency proof from ${old.size} to ${offered.size}: ${(e as Error).message}`,
        proof,
      );
    }
    await this.#store.save(this.logKey, note);
    return { checkpoint: offered, note };
  }

  /** Proves `leafHash` is at `index` in the trusted checkpoint (updating it first if needed). */
  async verifyInclusion(index: number, leafHash: Uint8Array): Promise<TrustedCheckpoint> {
    let trusted = await this.trusted();
    if (trusted === undefined || index >= trusted.checkpoint.size) trusted = await this.update();
    const { size, rootHash } = trusted.checkpoint;
    verifyInclusion(
      index,
      size,
      leafHash,
      await this.#proofs.inclusionProof(index, size),
      rootHash,
    );
    return trusted;
  }
}
