/**
 * The least a durable, signed log can do for one submission over HTTP, for bench:http to
 * measure beside the bare route and Vellum in the same run: what no design can skip, and
 * nothing else. Per request: the bearer token checked (SHA-256 of it, a map lookup), the body
 * read, a leaf of a random 16-byte id, the timestamp and the payload, and its RFC 6962 leaf hash.
 * Per batch (every submission that arrived while the previous batch was written: group commit):
 * the tree appended in memory (every node kept, so a proof is lookups), one Ed25519 checkpoint
 * signed, and one synced LevelDB write of the leaves and the checkpoint. Then each submitter is
 * answered with its receipt: index, leaf hash, tree size, the checkpoint and the inclusion proof
 * in a C2SP tlog-proof, about the size of Vellum's.
 *
 * Not there, because a log can do without them: ids as lookup keys, idempotency keys, request
 * log lines, metrics, the index and the access log, a second database, read-backs, a second
 * (timestamp) signature, crash recovery. It is a floor to measure against, not a server.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Context, Hono } from "hono";
import { Level } from "level";
import { formatCheckpoint } from "../../src/core/checkpoint.js";
import { CompactRange } from "../../src/core/compact.js";
import { sha256 } from "../../src/core/crypto.js";
import { signerFromSeed } from "../../src/core/keys.js";
import { signNote } from "../../src/core/note.js";
import { buildProof, inclusionProofPlan } from "../../src/core/proof.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { writeTlogProof } from "../../src/core/tlog-proof.js";
import { base64 } from "../../src/platform/base64.js";
import { installNodeCrypto } from "../../src/platform/node-crypto.js";

/** Batches being written at once (Vellum's sequencer: one committing, the next prepared). */
const MAX_IN_FLIGHT = 2;

/** The floor's one bearer token (a benchmark's, not a secret). */
export const FLOOR_TOKEN = "floor-token-for-the-benchmark";

interface Waiting {
  readonly payload: Uint8Array;
  readonly resolve: (answer: string) => void;
  readonly reject: (e: unknown) => void;
}

/** Adds POST /floor to `app`; returns a function that closes its database. */
export function addFloorRoute(app: Hono): () => Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "vellum-bench-floor-"));
  const db = new Level<Uint8Array, Uint8Array>(dir, {
    keyEncoding: "view",
    valueEncoding: "view",
  });
  // The server's crypto (OpenSSL through node:crypto), as Vellum's.
  installNodeCrypto();
  const utf8 = new TextEncoder();
  const tokenHashes = new Set([base64(sha256(utf8.encode(FLOOR_TOKEN)))]);
  const signer = signerFromSeed("bench.example/floor", randomBytes(32));
  const tree = CompactRange.empty();
  // Every complete node, and its base64 (a receipt's proof is mostly nodes other receipts of
  // the batch carry too: each is encoded once).
  const nodes: Uint8Array[][] = [];
  const encoded = new WeakMap<Uint8Array, string>();
  const keep = (level: number, index: number, hash: Uint8Array) => {
    let row = nodes[level];
    if (row === undefined) {
      row = [];
      nodes[level] = row;
    }
    row[index] = hash;
  };
  const encode = (hash: Uint8Array) => {
    let text = encoded.get(hash);
    if (text === undefined) {
      text = base64(hash);
      encoded.set(hash, text);
    }
    return text;
  };
  // A token, once its hash was found, is known: later requests with it skip the hash.
  const knownTokens = new Set<string>();
  let queue: Waiting[] = [];
  /** Batches whose write is under way: at most two, as Vellum's sequencer keeps. */
  let inFlight = 0;
  let scheduled = false;

  /** Starts a batch on the next turn of the event loop, if one may start. */
  function schedule(): void {
    if (scheduled || inFlight >= MAX_IN_FLIGHT || queue.length === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void commit();
    });
  }

  /**
   * One batch: everything queued, appended and signed at once; its write issued while the
   * previous one may still be syncing (LevelDB applies and syncs writes in the order issued, so
   * a batch's write resolving means the ones before it are durable too).
   */
  async function commit(): Promise<void> {
    const batch = queue;
    queue = [];
    inFlight++;
    const start = tree.end;
    // Each leaf: a random 16-byte id (one draw for the batch), the time, the payload.
    const ids = randomBytes(16 * batch.length);
    const now = Date.now();
    const leaves: Uint8Array[] = [];
    const leafHashes: Uint8Array[] = [];
    for (let i = 0; i < batch.length; i++) {
      const payload = batch[i]!.payload;
      const leaf = new Uint8Array(24 + payload.length);
      leaf.set(ids.subarray(16 * i, 16 * i + 16), 0);
      new DataView(leaf.buffer).setFloat64(16, now);
      leaf.set(payload, 24);
      const leafHash = hashLeaf(leaf);
      leaves.push(leaf);
      leafHashes.push(leafHash);
      tree.append(leafHash, keep);
    }
    const size = tree.end;
    const note = signNote(
      formatCheckpoint({ origin: signer.name, size, rootHash: tree.root(), extensions: [] }),
      [signer],
    );
    const write = db.batch();
    const key = new Uint8Array(9);
    const view = new DataView(key.buffer);
    for (let i = 0; i < batch.length; i++) {
      key[0] = 0x65;
      view.setBigUint64(1, BigInt(start + i));
      write.put(key, leaves[i]!);
    }
    key[0] = 0x63;
    view.setBigUint64(1, BigInt(size));
    write.put(key, utf8.encode(note));
    const written = write.write({ sync: true });
    schedule();
    try {
      await written;
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    } finally {
      inFlight--;
      schedule();
    }
    const quoted = JSON.stringify(note).slice(1);
    const read = (n: { level: number; index: number }) => nodes[n.level]![n.index]!;
    for (let i = 0; i < batch.length; i++) {
      const index = start + i;
      const proof = buildProof(inclusionProofPlan(index, size), read);
      const receipt = writeTlogProof(undefined, index, proof, encode, quoted, "\\n");
      batch[i]!.resolve(
        `{"index":${index},"leafHash":"${base64(leafHashes[i]!)}","treeSize":${size},"receipt":"${receipt}}`,
      );
    }
  }

  app.post("/floor", async (c: Context) => {
    const auth = c.req.header("Authorization") ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!knownTokens.has(token)) {
      if (!tokenHashes.has(base64(sha256(utf8.encode(token))))) {
        return c.body('{"title":"unauthorized"}', 401, { "Content-Type": "application/json" });
      }
      knownTokens.add(token);
    }
    const payload = new Uint8Array(await c.req.arrayBuffer());
    const answer = await new Promise<string>((resolve, reject) => {
      queue.push({ payload, resolve, reject });
      schedule();
    });
    return c.body(answer, 201, { "Content-Type": "application/json" });
  });

  return async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  };
}
