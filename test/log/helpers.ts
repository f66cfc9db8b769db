/** Shared set-up for log engine tests: a log over the memory driver, and independent checks. */
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { cosignatureVerifier } from "../../src/core/cosignature.js";
import { leafFromFields } from "../../src/core/entry.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { verifyTlogProof } from "../../src/core/tlog-proof.js";
import { verifyConsistency } from "../../src/core/verify.js";
import { Log, type LogConfig } from "../../src/log/log.js";
import type { Receipt } from "../../src/log/receipt.js";
import type { SignedCheckpoint } from "../../src/log/signer.js";
import { installNodeCrypto } from "../../src/platform/node-crypto.js";
import { MemoryDatabase } from "../../src/storage/memory.js";

// The server runs on node:crypto; so do these tests (the providers are proven equal elsewhere).
installNodeCrypto();

export const ORIGIN = "test.example/log";
export const SEED = new Uint8Array(32).fill(42);

export async function openMemoryLog(
  db = new MemoryDatabase(),
  config: Partial<LogConfig> = {},
): Promise<{ log: Log; db: MemoryDatabase; published: SignedCheckpoint[] }> {
  const published: SignedCheckpoint[] = [];
  const log = await Log.open({
    origin: ORIGIN,
    seed: SEED,
    kv: db.namespace("log"),
    checkpointIntervalMs: 0,
    onCheckpoint: (cp) => published.push(cp),
    ...config,
  });
  return { log, db, published };
}

export const payloadOf = (i: number, tag = "entry") => new TextEncoder().encode(`${tag} ${i}`);

/** Each payload's idempotency key: its own text. */
export const keyOf = (payload: Uint8Array) => ({
  idempotencyKey: new TextDecoder().decode(payload),
});

/**
 * Submits each entry with an idempotency key, as a client that retries must (the log
 * deduplicates by key: resubmitting after a failure returns the original if it landed), and
 * keeps what was acknowledged.
 */
export function keyedSubmitter(log: Log) {
  const acked: { receipt: Receipt; payload: Uint8Array }[] = [];
  const submit = async (payload: Uint8Array) => {
    const receipt = await log.submit(payload, keyOf(payload));
    acked.push({ receipt, payload });
    return receipt;
  };
  return { acked, submit };
}

/** Waits (bounded) until `log.status` is `status`; throws naming what it is instead. */
export async function waitForStatus(log: Log, status: Log["status"], ms = 3000): Promise<void> {
  for (let waited = 0; log.status !== status; waited += 5) {
    if (waited >= ms) throw new Error(`log is ${log.status}, not ${status}, after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Verifies an offline receipt with nothing but the log's public key, and the payload. */
export async function checkReceipt(log: Log, receipt: Receipt, payload: Uint8Array): Promise<void> {
  const text = await receipt.tlogProof();
  const logKey = verifierFromKey(log.signer.verifierKey);
  const parsed = verifyTlogProof(text, receipt.leafHash, logKey);
  if (parsed.index !== receipt.index) throw new Error("receipt index mismatch");
  // The receipt's extra plus the payload rebuild exactly the leaf that was proven.
  const leaf = leafFromFields(parsed.extra!, payload);
  const again = verifyTlogProof(text, hashLeaf(leaf), logKey);
  if (again.index !== receipt.index) throw new Error("rebuilt leaf not proven");
}

/** Checks every checkpoint in order extends the one before it (consistency proofs from the log). */
export async function checkConsistentHistory(
  log: Log,
  checkpoints: SignedCheckpoint[],
): Promise<void> {
  const verifiers = [
    verifierFromKey(log.signer.verifierKey),
    cosignatureVerifier(log.origin, log.signer.publicKey),
  ] as const;
  for (let i = 1; i < checkpoints.length; i++) {
    const a = openCheckpoint(checkpoints[i - 1]!.note, verifiers[0], [verifiers[1]]).checkpoint;
    const b = openCheckpoint(checkpoints[i]!.note, verifiers[0], [verifiers[1]]).checkpoint;
    if (b.size < a.size) throw new Error(`checkpoint ${i} shrinks the tree`);
    if (checkpoints[i]!.time < checkpoints[i - 1]!.time)
      throw new Error(`checkpoint ${i} goes back in time`);
    const proof = await log.consistencyProof(a.size, b.size);
    verifyConsistency(a.size, b.size, proof, a.rootHash, b.rootHash);
  }
}
