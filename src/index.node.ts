/**
 * @module
 * The verifier library for Node.js: the same API as ./index.js, with node:crypto installed as
 * the SHA-256 and Ed25519 implementation (measured several times faster; scripts/bench-core.ts).
 */
import { installNodeCrypto } from "./platform/node-crypto.js";

installNodeCrypto();

export * from "./index.js";
export { installNodeCrypto, nodeCrypto } from "./platform/node-crypto.js";
