/**
 * A stand-in tree state for store tests that commit batches by hand: the stores check only that
 * a compact range has one hash per set bit of the size.
 */
import { randomBytes } from "node:crypto";
import type { TreeState } from "../../src/storage/tree-state.js";

export function standInState(size: number): TreeState {
  const hashes = [...size.toString(2)].filter((c) => c === "1").length;
  return { size, compact: Array.from({ length: hashes }, () => new Uint8Array(randomBytes(32))) };
}
