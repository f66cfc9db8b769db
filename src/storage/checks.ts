/**
 * @module
 * Argument checks shared by the drivers, so every driver refuses the same inputs the same way.
 * The storage layer is only called by Vellum's own code, so a bad argument is a bug: INTERNAL.
 */
import { VellumError } from "../core/errors.js";
import type { RangeOptions, WriteOp } from "./types.js";

function bytes(x: unknown, what: string): Uint8Array {
  if (!(x instanceof Uint8Array)) throw new VellumError("INTERNAL", `${what} must be a Uint8Array`);
  return x;
}

export function checkKey(key: unknown): Uint8Array {
  return bytes(key, "key");
}

export function checkKeys(keys: unknown): readonly Uint8Array[] {
  if (!Array.isArray(keys)) throw new VellumError("INTERNAL", "keys must be an array");
  for (let i = 0; i < keys.length; i++) bytes(keys[i], `keys[${i}]`);
  return keys;
}

export function checkOps(ops: unknown): readonly WriteOp[] {
  if (!Array.isArray(ops)) throw new VellumError("INTERNAL", "ops must be an array");
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as WriteOp | undefined;
    // Messages are built only on failure: this runs for every op of every batch.
    if (op?.type === "put") {
      if (!(op.key instanceof Uint8Array)) bytes(op.key, `ops[${i}].key`);
      if (!(op.value instanceof Uint8Array)) bytes(op.value, `ops[${i}].value`);
    } else if (op?.type === "del") {
      if (!(op.key instanceof Uint8Array)) bytes(op.key, `ops[${i}].key`);
    } else {
      throw new VellumError("INTERNAL", `ops[${i}].type must be "put" or "del"`);
    }
  }
  return ops;
}

/** Validates a range; `limit` becomes a number (Infinity when absent). */
export function checkRange(options: RangeOptions): {
  gte: Uint8Array;
  lt: Uint8Array;
  limit: number;
  reverse: boolean;
} {
  const gte = bytes(options?.gte, "range gte");
  const lt = bytes(options?.lt, "range lt");
  const { limit } = options;
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new VellumError("INTERNAL", `range limit must be a non-negative integer, got ${limit}`);
  }
  return { gte, lt, limit: limit ?? Number.POSITIVE_INFINITY, reverse: options.reverse === true };
}
