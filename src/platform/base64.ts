/**
 * @module
 * Native base64 for the server's hot paths (receipts, proofs, entries): the same canonical,
 * padded standard alphabet as the core's portable encoder (tested equal), several times faster.
 */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * Base64 of each hash, as a JSON array's text: `["…","…"]`. Proofs are the most-served answer;
 * one buffer for all hashes and string building (no per-hash Buffer, no JSON.stringify walk)
 * is measurably cheaper. Base64 needs no JSON escaping.
 */
export function base64JsonArray(hashes: readonly Uint8Array[]): string {
  if (hashes.length === 0) return "[]";
  const size = hashes[0]!.length;
  const buf = Buffer.allocUnsafe(hashes.length * size);
  for (let i = 0; i < hashes.length; i++) buf.set(hashes[i]!, i * size);
  let text = "[";
  for (let i = 0; i < hashes.length; i++) {
    const h = hashes[i]!;
    if (h.length !== size) return JSON.stringify(hashes.map(base64));
    text += `${i === 0 ? '"' : ',"'}${buf.toString("base64", i * size, (i + 1) * size)}"`;
  }
  return `${text}]`;
}
