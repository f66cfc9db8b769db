/**
 * @module
 * node:crypto implementations of the core primitives: one-shot `crypto.hash` for SHA-256 and
 * OpenSSL's Ed25519, several times faster than the pure-JS defaults (see scripts/bench-core.ts).
 * Kept outside `src/core/` so the verifier library stays free of node:* imports.
 */
import * as crypto from "node:crypto";
import { type CryptoProvider, setCryptoProvider } from "../core/crypto.js";

// PKCS#8 and SPKI DER prefixes for Ed25519 (RFC 8410): the raw 32-byte seed or public key follows.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

const privateKeys = new Map<string, crypto.KeyObject>();

function privateKey(seed: Uint8Array): crypto.KeyObject {
  const id = Buffer.from(seed.buffer, seed.byteOffset, seed.byteLength).toString("base64");
  let key = privateKeys.get(id);
  if (key === undefined) {
    if (seed.length !== 32) throw new RangeError("Ed25519 seed must be 32 bytes");
    key = crypto.createPrivateKey({
      key: Buffer.concat([PKCS8_PREFIX, seed]),
      format: "der",
      type: "pkcs8",
    });
    // A process holds a handful of keys (a log's, a witness's); bound the cache anyway.
    if (privateKeys.size >= 64) privateKeys.clear();
    privateKeys.set(id, key);
  }
  return key;
}

function publicKeyObject(publicKey: Uint8Array): crypto.KeyObject {
  return crypto.createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, publicKey]),
    format: "der",
    type: "spki",
  });
}

function toBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * SHA-256 with its digest in a plain 32-byte Uint8Array, which V8 keeps on its own heap. Asking
 * node for the digest as a Buffer allocates an ArrayBuffer with a malloc'd backing store per
 * hash, freed later by V8's sweeper threads: measured 0.81 µs of CPU per 65-byte hash (every
 * thread) against 0.40–0.50 µs through a one-byte string ("binary", node's name for latin1) copied out here, the string
 * being an ordinary heap object (scripts/bench-core.ts, "SHA-256 digest as"). Same bytes: latin1
 * maps each byte to the character of that code.
 */
function sha256ToHeap(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  sha256Into(data, out, 0);
  return out;
}

/** The same digest written into out[offset, offset + 32) (the caller checked the room). */
function sha256Into(data: Uint8Array, out: Uint8Array, offset: number): void {
  const digest = crypto.hash("sha256", data, "binary");
  for (let i = 0; i < 32; i++) out[offset + i] = digest.charCodeAt(i);
}

export const nodeCrypto: CryptoProvider = {
  name: "node:crypto",
  sha256: sha256ToHeap,
  sha256Into,
  ed25519PublicKey: (seed) => {
    const der = crypto.createPublicKey(privateKey(seed)).export({ format: "der", type: "spki" });
    return toBytes(der.subarray(SPKI_PREFIX.length));
  },
  ed25519Sign: (seed, message) => toBytes(crypto.sign(null, message, privateKey(seed))),
  ed25519Verify: (publicKey, message, signature) => {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      return crypto.verify(null, message, publicKeyObject(publicKey), signature);
    } catch {
      return false;
    }
  },
};

/** Makes every core function use node:crypto. Idempotent. */
export function installNodeCrypto(): void {
  setCryptoProvider(nodeCrypto);
}
