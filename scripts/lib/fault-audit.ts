/**
 * After a fault and a restart: does the log still keep its two promises? Checked from outside,
 * over HTTP, with the log's public key and what the clients hold (their receipts and payloads):
 *
 * - **lost**: an acknowledged entry the log does not serve (404, out of range, an error other
 *   than INTEGRITY_FAILURE), or where the log's current tree holds another entry (a 200 with
 *   bytes the tree does not hold counts under "unverified" instead);
 * - **integrity**: an acknowledged entry answered 500 INTEGRITY_FAILURE (damaged, and said so);
 * - **unverified served**: any 200 whose bytes are not what the tree commits to: an entry, a row
 *   of a page (under the index it is labelled with), or an entry in a bundle, checked against
 *   the level-0 hashes (hash tiles re-derived to the root of the log's signed checkpoint), and
 *   against the acknowledged payload where there is one; also a hash tile set that does not
 *   give the signed root;
 * - **double-signed sizes**: a size for which the clients hold a signed checkpoint (from a
 *   receipt) and the log now serves another signed root (`GET /v1/checkpoints/<size>`), or for
 *   which two receipts carry different roots;
 * - **forked**: a receipt's checkpoint that the log's current tree is not consistent with
 *   (`GET /v1/proofs/consistency`, verified), **behind**: one larger than the log's tree, and
 *   **unprovable**: one the log answers no consistency proof for.
 */
import { base64Encode, bytesEqual } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { rootOf } from "../../src/core/compact.js";
import { decodeLeaf, encodeLeaf, parseUuid } from "../../src/core/entry.js";
import type { NoteVerifier } from "../../src/core/keys.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import {
  decodeEntryBundle,
  decodeHashTile,
  formatTilePath,
  TILE_WIDTH,
} from "../../src/core/tiles.js";
import { verifyConsistency } from "../../src/core/verify.js";
import { type Ack, b64 } from "./fault-load.js";

export interface AuditResult {
  /** The log's tree size (its latest signed checkpoint). */
  readonly size: number;
  readonly acknowledged: number;
  readonly lost: number;
  readonly integrity: number;
  readonly unverifiedServed: number;
  readonly doubleSigned: number;
  readonly forked: number;
  readonly behind: number;
  /** Receipt checkpoints the log answered no consistency proof for (an error, not a 200). */
  readonly unprovable: number;
  /** What was found, one line each (the first few of each kind). */
  readonly notes: string[];
}

interface EntryJson {
  index: number;
  id: string;
  timestamp: number;
  /** The submitting token's id (version-2 leaves), null for version-1 leaves. */
  submitter: string | null;
  leafHash: string;
  payload: string;
}

const CONCURRENCY = 16;

async function parallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** The leaf hash of an entry as the API shows it, rebuilt from its fields (not its leafHash). */
function servedLeafHash(e: EntryJson): Uint8Array {
  return hashLeaf(
    encodeLeaf({
      id: parseUuid(e.id),
      timestamp: e.timestamp,
      payload: b64(e.payload),
      ...(e.submitter === null ? {} : { submitter: e.submitter }),
    }),
  );
}

export async function audit(
  url: string,
  token: string,
  logKey: NoteVerifier,
  acks: Iterable<Ack>,
): Promise<AuditResult> {
  const auth = { Authorization: `Bearer ${token}` };
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, { headers, signal: AbortSignal.timeout(30_000) });
  const notes: string[] = [];
  const noted = new Map<string, number>();
  const note = (kind: string, line: string) => {
    const n = (noted.get(kind) ?? 0) + 1;
    noted.set(kind, n);
    if (n <= 3) notes.push(`${kind}: ${line}`);
  };
  const all = [...acks];

  const info = (await (await get("/v1/log")).json()) as { treeSize: number; checkpoint: string };
  const head = openCheckpoint(info.checkpoint, logKey).checkpoint;
  const size = head.size;

  // The level-0 hashes of the whole tree, and whether they give the signed root.
  const leafHashes: Uint8Array[] = [];
  const unverified = new Set<number>();
  let tilesOk = true;
  for (let t = 0; t * TILE_WIDTH < size; t++) {
    const width = Math.min(TILE_WIDTH, size - t * TILE_WIDTH);
    const res = await get(`/${formatTilePath({ level: 0, index: t, width })}`);
    if (res.status !== 200) {
      tilesOk = false;
      note("tiles", `tile/0/${t} (width ${width}) answered ${res.status}`);
      break;
    }
    leafHashes.push(...decodeHashTile(new Uint8Array(await res.arrayBuffer()), width));
  }
  if (tilesOk && !bytesEqual(rootOf(leafHashes), head.rootHash)) {
    tilesOk = false;
    unverified.add(-1);
    note("unverified", "the level-0 hash tiles do not hash to the signed root");
  }
  const expected = (index: number): Uint8Array | undefined =>
    tilesOk ? leafHashes[index] : undefined;

  // Acknowledged entries, one by one.
  let lost = 0;
  let integrity = 0;
  await parallel(all, async (a) => {
    const res = await get(`/v1/entries/${a.index}`, auth);
    const text = await res.text();
    if (res.status === 200) {
      const e = JSON.parse(text) as EntryJson;
      const served = servedLeafHash(e);
      if (
        e.index === a.index &&
        bytesEqual(served, a.leafHash) &&
        bytesEqual(b64(e.payload), a.payload)
      ) {
        return;
      }
      const want = expected(a.index);
      if (want !== undefined && bytesEqual(served, want)) {
        // Another entry, which the log's current tree does hold there: the acknowledged one is gone.
        lost++;
        note("lost", `entry ${a.index}: the log now holds another entry at this index`);
      } else {
        unverified.add(a.index);
        note("unverified", `entry ${a.index} served with 200 and bytes its tree does not hold`);
      }
      return;
    }
    if (res.status === 500 && text.includes("INTEGRITY_FAILURE")) {
      integrity++;
      return;
    }
    lost++;
    note("lost", `entry ${a.index}: ${res.status} ${text.slice(0, 160)}`);
  });

  // Every page and bundle of the tree: each served row against the tree (and the acks).
  const byIndex = new Map(all.map((a) => [a.index, a]));
  const checkServed = (index: number, leafHash: Uint8Array, payload: Uint8Array, where: string) => {
    const want = expected(index);
    const ack = byIndex.get(index);
    // Against the tree when its tiles check out; else against what was acknowledged there.
    if (
      want !== undefined
        ? !bytesEqual(want, leafHash)
        : ack !== undefined && !bytesEqual(ack.payload, payload)
    ) {
      unverified.add(index);
      note("unverified", `${where}: index ${index} does not match the tree`);
    }
  };
  const pages: number[] = [];
  for (let start = 0; start < size; start += 1000) pages.push(start);
  await parallel(pages, async (start) => {
    const res = await get(`/v1/entries?start=${start}&limit=1000`, auth);
    if (res.status !== 200) {
      note("pages", `entries?start=${start} answered ${res.status}`);
      return;
    }
    const { entries } = (await res.json()) as { entries: EntryJson[] };
    for (const e of entries) {
      checkServed(e.index, servedLeafHash(e), b64(e.payload), `page ${start}`);
    }
  });
  const bundles: number[] = [];
  for (let t = 0; t * TILE_WIDTH < size; t++) bundles.push(t);
  await parallel(bundles, async (t) => {
    const width = Math.min(TILE_WIDTH, size - t * TILE_WIDTH);
    const res = await get(`/${formatTilePath({ level: "entries", index: t, width })}`, auth);
    if (res.status !== 200) {
      note("bundles", `tile/entries/${t} answered ${res.status}`);
      return;
    }
    let leaves: Uint8Array[];
    try {
      leaves = decodeEntryBundle(new Uint8Array(await res.arrayBuffer()), width);
    } catch (e) {
      unverified.add(t * TILE_WIDTH);
      note("unverified", `bundle ${t} served with 200 does not decode: ${(e as Error).message}`);
      return;
    }
    for (const [k, leaf] of leaves.entries()) {
      const index = t * TILE_WIDTH + k;
      let payload: Uint8Array;
      try {
        payload = decodeLeaf(leaf).payload;
      } catch {
        unverified.add(index);
        note("unverified", `bundle ${t}: index ${index} is not a leaf`);
        continue;
      }
      checkServed(index, hashLeaf(leaf), payload, `bundle ${t}`);
    }
  });

  // Every checkpoint the clients hold: signed once per size, and part of the log's history.
  const bySize = new Map<number, Ack>();
  let doubleSigned = 0;
  let forked = 0;
  let behind = 0;
  let unprovable = 0;
  const doubled = new Set<number>();
  for (const a of all) {
    const other = bySize.get(a.size);
    if (other === undefined) bySize.set(a.size, a);
    else if (!bytesEqual(other.root, a.root)) doubled.add(a.size);
  }
  await parallel([...bySize.values()], async (a) => {
    const res = await get(`/v1/checkpoints/${a.size}`);
    if (res.status === 200) {
      const cp = openCheckpoint(await res.text(), logKey).checkpoint;
      if (!bytesEqual(cp.rootHash, a.root)) {
        doubled.add(a.size);
        note(
          "double-signed",
          `size ${a.size}: receipt root ${base64Encode(a.root)}, now ${base64Encode(cp.rootHash)}`,
        );
      }
    } else {
      await res.body?.cancel();
    }
    if (a.size > size) {
      behind++;
      note("behind", `a receipt's checkpoint has size ${a.size}, the log ${size}`);
      return;
    }
    const proof = await get(`/v1/proofs/consistency?from=${a.size}&to=${size}`);
    if (proof.status !== 200) {
      unprovable++;
      note("unprovable", `consistency from ${a.size} answered ${proof.status}`);
      await proof.body?.cancel();
      return;
    }
    const { proof: hashes } = (await proof.json()) as { proof: string[] };
    try {
      verifyConsistency(a.size, size, hashes.map(b64), a.root, head.rootHash);
    } catch (e) {
      forked++;
      note("forked", `size ${a.size} is not in the log's history: ${(e as Error).message}`);
    }
  });
  doubleSigned = doubled.size;
  return {
    size,
    acknowledged: all.length,
    lost,
    integrity,
    unverifiedServed: unverified.size,
    doubleSigned,
    forked,
    behind,
    unprovable,
    notes,
  };
}
