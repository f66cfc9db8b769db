/**
 * @module
 * The stored tree state (key "s"): the tree size and the hashes of its compact range, which is
 * all the sequencer needs to resume. Written in every batch's atomic write, with the entries and
 * strata it describes, so it can never get ahead of or behind them. CBOR (cbor-x) because it is
 * internal: nobody else verifies it.
 */
import { Encoder } from "cbor-x";
import { check, VellumError } from "../core/errors.js";
import { rangeNodes } from "../core/merkle.js";
import type { TreeState } from "./log-store.js";

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const STATE_VERSION = 1;

export type { TreeState };

export function encodeState(state: TreeState): Uint8Array {
  return cbor.encode({ v: STATE_VERSION, size: state.size, compact: state.compact });
}

export function decodeState(bytes: Uint8Array): TreeState {
  let raw: { v?: unknown; size?: unknown; compact?: unknown };
  try {
    raw = cbor.decode(bytes) as typeof raw;
  } catch (e) {
    throw new VellumError("STATE_MISMATCH", "stored tree state does not decode", { cause: e });
  }
  check(raw.v === STATE_VERSION, "STATE_MISMATCH", `unknown tree state version ${String(raw.v)}`);
  const size = raw.size;
  check(Number.isSafeInteger(size), "STATE_MISMATCH", "stored tree state has no valid size");
  const compact = (Array.isArray(raw.compact) ? raw.compact : []).map(
    (h: unknown) => new Uint8Array(h as Uint8Array),
  );
  check(
    compact.length === rangeNodes(0, size as number).length,
    "STATE_MISMATCH",
    "stored tree state's compact range does not match its size",
  );
  return { size: size as number, compact };
}
