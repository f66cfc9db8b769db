/**
 * @module
 * Vellum's verifier library: pure, browser-safe implementations of RFC 6962 / RFC 9162 Merkle
 * trees and proofs and of the C2SP formats (signed-note, tlog-checkpoint, tlog-cosignature,
 * tlog-tiles, tlog-proof, tlog-policy). No node:* imports, no I/O, no clock.
 *
 * On Node.js the package's "node" export condition loads ./index.node.js instead, which is the
 * same API with SHA-256 and Ed25519 from node:crypto.
 */
export * from "./core/bytes.js";
export * from "./core/checkpoint.js";
export * from "./core/compact.js";
export * from "./core/cosignature.js";
export * from "./core/crypto.js";
export * from "./core/errors.js";
export * from "./core/keys.js";
export * from "./core/list-run.js";
export * from "./core/merkle.js";
export * from "./core/multiproof.js";
export * from "./core/note.js";
export * from "./core/policy.js";
export * from "./core/problem-codes.js";
export * from "./core/proof.js";
export * from "./core/rfc6962.js";
export * from "./core/smt.js";
export * from "./core/tiles.js";
export * from "./core/tlog-proof.js";
export * from "./core/verify.js";
export * from "./core/window.js";
