/**
 * @module
 * The log's checkpoint signer. A Vellum checkpoint carries two signatures by the log's one
 * Ed25519 key, both under the key name = origin:
 * - the C2SP signed-note Ed25519 signature (type 0x01) that every checkpoint verifier checks;
 * - a tlog-cosignature/v1 (type 0x04) of the same key, which adds a signed timestamp: the
 *   checkpoint body has no time, and monitors need one to see an idle log is alive (the log
 *   re-signs on an interval) and to hold the log to "time never goes backwards".
 * The two signed messages cannot be confused: a cosigned message starts with the line
 * "cosignature/v1", which Vellum refuses as an origin.
 */
import { type Checkpoint, formatCheckpoint, openCheckpoint } from "../core/checkpoint.js";
import { cosignatureVerifier, cosignerFromSeed } from "../core/cosignature.js";
import { check, VellumError } from "../core/errors.js";
import {
  type Cosigner,
  type Ed25519NoteSigner,
  formatVerifierKey,
  isValidKeyName,
  type NoteVerifier,
  SIG_TYPE_COSIGNATURE,
  signerFromSeed,
} from "../core/keys.js";
import { signNote } from "../core/note.js";

export interface SignedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The signed note text, as published. */
  readonly note: string;
  /** POSIX seconds of the log's timestamp signature. */
  readonly time: number;
}

export class CheckpointSigner {
  readonly origin: string;
  readonly #signer: Ed25519NoteSigner;
  readonly #cosigner: Cosigner;
  readonly #verifiers: readonly [NoteVerifier, NoteVerifier];

  constructor(origin: string, seed: Uint8Array) {
    check(
      isValidKeyName(origin) && origin !== "cosignature/v1",
      "MALFORMED",
      `origin "${origin}" is not usable as a key name (no spaces, no "+", not "cosignature/v1")`,
    );
    this.origin = origin;
    this.#signer = signerFromSeed(origin, seed);
    this.#cosigner = cosignerFromSeed(origin, seed, 0);
    this.#verifiers = [
      this.#signer.verifier(),
      cosignatureVerifier(origin, this.#signer.publicKey),
    ];
  }

  /** The verifier key (type 0x01) that checks this log's checkpoints: `DATA/log.vkey`. */
  get verifierKey(): string {
    return this.#signer.verifierKey;
  }

  /** The verifier key (type 0x04) of the log's timestamp signatures. */
  get timestampVerifierKey(): string {
    return formatVerifierKey({
      name: this.origin,
      type: SIG_TYPE_COSIGNATURE,
      publicKey: this.#signer.publicKey,
    });
  }

  get publicKey(): Uint8Array {
    return this.#signer.publicKey;
  }

  sign(size: number, rootHash: Uint8Array, time: number): SignedCheckpoint {
    const checkpoint: Checkpoint = { origin: this.origin, size, rootHash, extensions: [] };
    const note = signNote(formatCheckpoint(checkpoint), [this.#signer, this.#cosigner.at(time)]);
    return { checkpoint, note, time };
  }

  /**
   * Opens a checkpoint this log signed (from its own storage): both signatures must verify with
   * this key, which is how a start with the wrong key is caught.
   */
  open(note: string): SignedCheckpoint {
    let opened: ReturnType<typeof openCheckpoint>;
    try {
      opened = openCheckpoint(note, this.#verifiers[0], [this.#verifiers[1]]);
    } catch (e) {
      throw new VellumError(
        "STATE_MISMATCH",
        `the stored checkpoint was not signed by this key for origin "${this.origin}" (${(e as Error).message}); is this the right key and data directory?`,
        { cause: e },
      );
    }
    const stamp = opened.signatures.find((s) => s.timestamp !== undefined);
    if (stamp?.timestamp === undefined) {
      throw new VellumError("STATE_MISMATCH", "the stored checkpoint has no timestamp signature");
    }
    return { checkpoint: opened.checkpoint, note, time: stamp.timestamp };
  }
}
