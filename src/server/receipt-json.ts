/**
 * @module
 * Receipts as JSON text, for the submit and receipt routes.
 */
import { encodeLeafFields } from "../core/entry.js";
import { TLOG_PROOF_HEADER } from "../core/tlog-proof.js";
import type { Receipt } from "../log/receipt.js";
import { base64 as base64Encode } from "../platform/base64.js";

/** JSON string literals of recent checkpoint notes: every receipt of a batch carries the same. */
let quotedNote = { note: "", json: '""' };
function quoteNote(note: string): string {
  if (quotedNote.note !== note) quotedNote = { note, json: JSON.stringify(note) };
  return quotedNote.json;
}

/**
 * A receipt as the members of a JSON object (no braces): index, id, timestamp, leafHash,
 * treeSize, checkpoint, receipt (the C2SP tlog-proof text), duplicate, witnessed. Written
 * directly rather than through JSON.stringify, which would build the tlog-proof text and then
 * scan it again to escape it: here its newlines are written escaped, and the checkpoint note,
 * the same for the whole batch, is escaped once (a test checks the text parses to the same
 * values as the receipt's own tlogProof()).
 */
export async function receiptMembers(r: Receipt): Promise<string> {
  const quoted = quoteNote(r.checkpoint);
  const extra = encodeLeafFields({ id: r.id, timestamp: r.timestamp, leafHash: r.leafHash });
  let proof = "";
  for (const h of await r.proof()) proof += `${base64Encode(h)}\\n`;
  const receipt = `"${TLOG_PROOF_HEADER}\\nextra ${base64Encode(extra)}\\nindex ${r.index}\\n${proof}\\n${quoted.slice(1)}`;
  return (
    `"index":${r.index},"id":"${r.idText}","timestamp":${r.timestamp},` +
    `"leafHash":"${base64Encode(r.leafHash)}","treeSize":${r.treeSize},"checkpoint":${quoted},` +
    `"receipt":${receipt},"duplicate":${r.duplicate},"witnessed":${r.witnessed}`
  );
}
