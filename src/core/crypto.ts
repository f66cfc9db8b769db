/**
 * @module
 * The two primitives everything rests on: SHA-256 and Ed25519 (RFC 8032, pure EdDSA).
 *
 * The default implementation is pure JavaScript (@noble/hashes, @noble/ed25519) so the verifier
 * runs in browsers. On Node.js, `src/platform/node-crypto.ts` installs node:crypto, measured
 * several times faster (scripts/bench-core.ts). Ed25519 is deterministic, so both providers
 * produce identical signatures; a test checks that they do.
 */
import * as ed from "@noble/ed25519";
import { sha256 as nobleSha256, sha512 } from "@noble/hashes/sha2.js";

ed.hashes.sha512 = sha512;

export interface CryptoProvider {
  readonly name: string;
  sha256(data: Uint8Array): Uint8Array;
  /**
   * Optional: SHA-256 written into out[offset, offset + 32) rather than a new array (hot loops
   * that hash millions of nodes; a new 32-byte array per hash was most of what they allocated).
   */
  sha256Into?(data: Uint8Array, out: Uint8Array, offset: number): void;
  /** Public key (32 bytes) of an Ed25519 private key given as its 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** 64-byte Ed25519 signature of `message` by the key with this 32-byte seed. */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Verifies an Ed25519 signature; returns false for any malformed input. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

export const nobleCrypto: CryptoProvider = {
  name: "noble",
  sha256: (data) => nobleSha256(data),
  ed25519PublicKey: (seed) => ed.getPublicKey(seed),
  ed25519Sign: (seed, message) => ed.sign(message, seed),
  ed25519Verify: (publicKey, message, signature) => {
    try {
      // Strict RFC 8032 checks (not ZIP-215), matching OpenSSL, so both providers agree.
      return ed.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

let active: CryptoProvider = nobleCrypto;

/** Replaces the implementation used by every core function (call once, at start-up). */
export function setCryptoProvider(provider: CryptoProvider): void {
  active = provider;
}

export function cryptoProvider(): CryptoProvider {
  return active;
}

export function sha256(data: Uint8Array): Uint8Array {
  return active.sha256(data);
}

/** SHA-256 of `data` written into out[offset, offset + 32). */
export function sha256Into(data: Uint8Array, out: Uint8Array, offset: number): void {
  if (offset < 0 || offset + 32 > out.length) throw new RangeError("no room for a digest");
  if (active.sha256Into !== undefined) active.sha256Into(data, out, offset);
  else out.set(active.sha256(data), offset);
}
