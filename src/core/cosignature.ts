/**
 * @module
 * C2SP tlog-cosignature v1, Ed25519 (signature type 0x04), §Format and §Ed25519 signed message.
 *
 *   key id    = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]
 *   signature = 8-byte big-endian POSIX seconds || 64-byte Ed25519 signature
 *               (76 bytes with the key id in the note's signature line)
 *   message   = "cosignature/v1\ntime <decimal seconds>\n" || whole checkpoint text
 *
 * A cosignature states: as of that time, this is the largest tree head the cosigner observed for
 * the origin, consistent with everything it saw before. Extension lines are signed but carry no
 * statement.
 *
 * Invariants:
 * - no clock: the caller passes the time (seconds, not milliseconds) to every cosigner.
 * - verification rebuilds the message from the note text and the timestamp inside the
 *   signature, so a cosignature verifier is an ordinary NoteVerifier: it plugs into verifyNote
 *   and openCheckpoint next to the log's key, and verified signatures carry `timestamp`.
 * - times above 2^53-1 are refused on both sides (the spec lets verifiers refuse future times).
 *
 * The message rule and the key-type dispatch live in keys.ts (one place, no import cycle); this
 * module is the tlog-cosignature-facing API.
 */
import { check } from "./errors.js";
import {
  COSIGNATURE_SIZE,
  type Cosigner,
  cosignatureMessage,
  cosignatureTimestamp,
  type NoteVerifier,
  parseVerifierKey,
  SIG_TYPE_COSIGNATURE,
  signerFromKey,
  signerFromSeed,
  verifierFromPublicKey,
} from "./keys.js";
import { signNote } from "./note.js";

export { COSIGNATURE_SIZE, type Cosigner, cosignatureMessage, cosignatureTimestamp };

/** A cosigner from a 32-byte Ed25519 seed, writing `time` (POSIX seconds) into its signatures. */
export function cosignerFromSeed(name: string, seed: Uint8Array, time: number): Cosigner {
  return signerFromSeed(name, seed, SIG_TYPE_COSIGNATURE, time);
}

/** A cosigner from a `PRIVATE+KEY+...` signer key of type 0x04. Throws BAD_KEY otherwise. */
export function cosignerFromKey(skey: string, time: number): Cosigner {
  const signer = signerFromKey(skey, time);
  check(signer.type === SIG_TYPE_COSIGNATURE, "BAD_KEY", "not a cosignature (type 0x04) key");
  return signer as Cosigner;
}

/** A verifier for a cosigner's 32-byte Ed25519 public key. */
export function cosignatureVerifier(name: string, publicKey: Uint8Array): NoteVerifier {
  return verifierFromPublicKey(name, publicKey, SIG_TYPE_COSIGNATURE);
}

/** A verifier from a cosigner's verifier key text; refuses keys of other types (BAD_KEY). */
export function cosignatureVerifierFromKey(vkey: string): NoteVerifier {
  const key = parseVerifierKey(vkey);
  check(key.type === SIG_TYPE_COSIGNATURE, "BAD_KEY", `${key.name}: not a type 0x04 key`);
  return cosignatureVerifier(key.name, key.publicKey);
}

/**
 * The signature line (`— <name> <base64>\n`) of `cosigner` over a checkpoint body, which is
 * what a tlog-witness answers with. The caller must have verified the checkpoint (log signature,
 * consistency with what it cosigned before) first.
 */
export function cosignatureLine(checkpointText: string, cosigner: Cosigner): string {
  return signNote(checkpointText, [cosigner]).slice(checkpointText.length + 1);
}
