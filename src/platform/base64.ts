/**
 * @module
 * Native base64 for the server's hot paths (receipts, proofs, entries): the same canonical,
 * padded standard alphabet as the core's portable encoder (tested equal), several times faster.
 */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
