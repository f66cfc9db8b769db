/**
 * @module
 * Puts given one at a time, written as one atomic, durable write by any driver.
 */
import type { KeyValueStore, Put, WriteOp } from "./types.js";

/**
 * Writes the puts `fill` gives, atomically and durably: through the driver's `writePuts` when it
 * has one, else collected (copied: the caller may reuse its buffers) into one `write`. Nothing
 * to put writes nothing.
 */
export async function writePuts(kv: KeyValueStore, fill: (put: Put) => void): Promise<void> {
  if (kv.writePuts !== undefined) return kv.writePuts(fill);
  const ops: WriteOp[] = [];
  fill((key, value) => ops.push({ type: "put", key: key.slice(), value: value.slice() }));
  if (ops.length > 0) await kv.write(ops);
}
