/**
 * @module
 * Checks a WORM archive from what the bucket holds alone (spec/storage.md, "Checking the
 * archive"), with nothing of the log but its verifier key:
 *
 *  - every object has exactly one version (a second one is a write over a locked object: the
 *    oldest is what is checked, and the newer one is reported), is locked in COMPLIANCE mode,
 *    and is retained at least the configured period from when it was written;
 *  - every checkpoint is signed by the log's key and named after its size and its note's hash;
 *  - the bundles run 0, 1, 2, … with no gap; every full hash tile is re-derived from them and
 *    equal, and no tile is there without the bundles beneath it;
 *  - every checkpoint up to the archived entries has the root those entries make (so they are all
 *    consistent with each other: one sequence of leaves); two checkpoints of one size have one
 *    root. Checkpoints beyond the last full bundle are checked by signature only (the tail).
 */
import { bytesEqual, hexEncode, utf8Decode, utf8Encode } from "../core/bytes.js";
import { openCheckpoint } from "../core/checkpoint.js";
import { CompactRange } from "../core/compact.js";
import { sha256 } from "../core/crypto.js";
import { verifierFromKey } from "../core/keys.js";
import { EMPTY_ROOT, hashLeaf } from "../core/rfc6962.js";
import {
  decodeEntryBundle,
  encodeHashTile,
  parseTilePath,
  perfectSubtreeRoot,
  TILE_WIDTH,
} from "../core/tiles.js";
import { readCheckpointRun } from "./archiver.js";
import type { ObjectVersion, WormBucket } from "./bucket.js";
import { inParallel } from "./parallel.js";
import { type RetentionPeriod, retainUntil } from "./retention.js";

export interface ArchiveReport {
  readonly objects: number;
  readonly bundles: number;
  readonly tiles: number;
  readonly checkpoints: number;
  /** Entries covered by full bundles. */
  readonly entries: number;
  /** The largest signed size found. */
  readonly largestCheckpoint: number;
  /** Checkpoints past the archived entries: signature checked only. */
  readonly tailCheckpoints: number;
  /** One line per problem; none means the archive is whole and consistent. */
  readonly problems: string[];
}

// Retention is compared with a little slack: the writer computes it just before its PUT.
const CLOCK_SLACK_MS = 5 * 60_000;

/**
 * Whether every version of `key` holds the same bytes: a write the archiver redid (after a crash,
 * or a writer that lost its lease finishing a step) adds an identical version, which is harmless;
 * a delete marker or other bytes is not.
 */
async function sameBytes(
  bucket: WormBucket,
  key: string,
  list: readonly { versionId: string }[],
): Promise<boolean> {
  if (list.some((v) => v.versionId.startsWith("delete-marker:"))) return false;
  const first = await bucket.get(key, (list[0] as { versionId: string }).versionId);
  for (const v of list.slice(1)) {
    if (!bytesEqual(first, await bucket.get(key, v.versionId))) return false;
  }
  return true;
}

/**
 * The head (the latest checkpoint, the partial tiles of its size): unlocked and replaced as the
 * log grows, so checked for what it says, not for a lock.
 */
const isHead = (key: string) => key === "checkpoint" || /\.p\/\d+$/.test(key);

/** Object-store calls in flight at once. */
const PARALLEL_READS = 16;

export async function checkArchive(
  bucket: WormBucket,
  options: { readonly verifierKey: string; readonly retention: RetentionPeriod },
): Promise<ArchiveReport> {
  const verifier = verifierFromKey(options.verifierKey);
  const problems: string[] = [];
  const all = await bucket.versions("");
  const oldest = new Map<string, string>();
  const heads: string[] = [];
  // Each object's versions and lock, 16 at a time; problems reported in key order.
  const listed = [...all];
  const found: { problems: string[]; oldest?: string }[] = listed.map(() => ({ problems: [] }));
  await inParallel(
    listed.map((_, i) => i),
    PARALLEL_READS,
    async (i) => {
      const [key, list] = listed[i] as [string, ObjectVersion[]];
      const out = found[i] as { problems: string[]; oldest?: string };
      if (isHead(key)) return;
      const first = list.find((v) => !v.versionId.startsWith("delete-marker:"));
      if (list.length > 1 && !(await sameBytes(bucket, key, list))) {
        out.problems.push(
          `${bucket.describe(key)} has ${list.length} versions: something wrote over a locked object (its oldest version is the one checked)`,
        );
      }
      if (first === undefined) {
        out.problems.push(`${bucket.describe(key)} is only a delete marker`);
        return;
      }
      out.oldest = first.versionId;
      const lock = await bucket.retention(key, first.versionId);
      const needed = retainUntil(options.retention, first.lastModified).getTime() - CLOCK_SLACK_MS;
      if (lock.mode !== "COMPLIANCE") {
        out.problems.push(
          `${bucket.describe(key)} is not locked in COMPLIANCE mode (${lock.mode ?? "no lock"})`,
        );
      } else if (lock.retainUntil === undefined || lock.retainUntil.getTime() < needed) {
        out.problems.push(
          `${bucket.describe(key)} is retained until ${lock.retainUntil?.toISOString() ?? "never"}, less than ${options.retention.text} from ${first.lastModified.toISOString()}`,
        );
      }
    },
  );
  listed.forEach(([key], i) => {
    const out = found[i] as { problems: string[]; oldest?: string };
    if (isHead(key)) heads.push(key);
    problems.push(...out.problems);
    if (out.oldest !== undefined) oldest.set(key, out.oldest);
  });
  // Reads started ahead of their turn (bundles and level-0 tiles, the next PARALLEL_READS).
  const ahead = new Map<string, Promise<Uint8Array>>();
  const read = (key: string) => {
    const started = ahead.get(key);
    ahead.delete(key);
    return started ?? bucket.get(key, oldest.get(key) as string);
  };
  const readAhead = (key: string | undefined) => {
    if (key === undefined || ahead.has(key) || !oldest.has(key)) return;
    const p = bucket.get(key, oldest.get(key) as string);
    p.catch(() => undefined); // reported when its turn comes
    ahead.set(key, p);
  };

  // Checkpoints: signature, name; the root each size must have.
  const roots = new Map<number, { root: Uint8Array; key: string }>();
  let checkpoints = 0;
  const checkNote = (note: string, key: string, expectedName?: string) => {
    const { checkpoint } = openCheckpoint(note, verifier);
    if (expectedName !== undefined && key !== expectedName) {
      problems.push(`${bucket.describe(key)}: named wrong (expected ${expectedName})`);
    }
    const seen = roots.get(checkpoint.size);
    if (seen !== undefined && !bytesEqual(seen.root, checkpoint.rootHash)) {
      problems.push(
        `INCONSISTENT: ${bucket.describe(key)} and ${bucket.describe(seen.key)} sign two roots for size ${checkpoint.size}`,
      );
    }
    roots.set(checkpoint.size, { root: checkpoint.rootHash, key });
    checkpoints++;
    return checkpoint.size;
  };
  for (const key of [...oldest.keys()].filter((k) => k.startsWith("checkpoints/")).sort()) {
    const bytes = await read(key);
    // Runs (checkpoints/<first>-<last>/<sha256>, archiver.ts), or one note per object
    // (checkpoints/<size>/<sha256 of the note>), as archives before runs were written.
    const run = /^checkpoints\/(\d{20})-(\d{20})\/([0-9a-f]{64})$/.exec(key);
    try {
      if (run !== null) {
        if (hexEncode(sha256(bytes)) !== run[3]) {
          problems.push(`${bucket.describe(key)}: its bytes do not hash to its name`);
        }
        const notes = readCheckpointRun(bytes);
        const sizes: number[] = [];
        for (const [i, note] of notes.entries()) {
          try {
            sizes.push(checkNote(note, key));
          } catch (e) {
            problems.push(`${bucket.describe(key)}, note ${i + 1}: ${(e as Error).message}`);
          }
        }
        if (
          sizes.length > 0 &&
          (Math.min(...sizes) !== Number(run[1]) || Math.max(...sizes) !== Number(run[2]))
        ) {
          problems.push(
            `${bucket.describe(key)}: holds sizes ${Math.min(...sizes)} to ${Math.max(...sizes)}, named ${Number(run[1])} to ${Number(run[2])}`,
          );
        }
      } else {
        const note = utf8Decode(bytes, "checkpoint");
        const size = Number(note.split("\n")[1]);
        checkNote(
          note,
          key,
          `checkpoints/${String(size).padStart(20, "0")}/${hexEncode(sha256(utf8Encode(note)))}`,
        );
      }
    } catch (e) {
      problems.push(`${bucket.describe(key)}: ${(e as Error).message}`);
    }
  }

  // The head's checkpoint: signed, and one root per size with every other checkpoint.
  if (heads.includes("checkpoint")) {
    const bytes = await bucket.getLatest("checkpoint");
    try {
      const { checkpoint } = openCheckpoint(
        utf8Decode(bytes ?? new Uint8Array(), "checkpoint"),
        verifier,
      );
      const seen = roots.get(checkpoint.size);
      if (seen !== undefined && !bytesEqual(seen.root, checkpoint.rootHash)) {
        problems.push(
          `INCONSISTENT: ${bucket.describe("checkpoint")} and ${bucket.describe(seen.key)} sign two roots for size ${checkpoint.size}`,
        );
      }
      if (seen === undefined)
        roots.set(checkpoint.size, { root: checkpoint.rootHash, key: "checkpoint" });
    } catch (e) {
      problems.push(`${bucket.describe("checkpoint")}: ${(e as Error).message}`);
    }
  }

  // Bundles in order, re-deriving every full tile above them.
  const bundleKeys = new Map<number, string>();
  const tileKeys = new Map<string, string>();
  for (const key of oldest.keys()) {
    if (!key.startsWith("tile/")) continue;
    try {
      const tile = parseTilePath(key);
      if (tile.width !== TILE_WIDTH) {
        problems.push(`${bucket.describe(key)}: a partial tile in the archive`);
      } else if (tile.level === "entries") bundleKeys.set(tile.index, key);
      else tileKeys.set(`${tile.level}/${tile.index}`, key);
    } catch {
      problems.push(`${bucket.describe(key)}: not a tlog-tiles path`);
    }
  }
  const range = CompactRange.empty();
  const sizes = [...roots.keys()].sort((a, b) => a - b);
  let nextSize = 0;
  const checkRootAt = (size: number, root: Uint8Array) => {
    while (nextSize < sizes.length && (sizes[nextSize] as number) === size) {
      const cp = roots.get(size)!;
      if (!bytesEqual(cp.root, root)) {
        problems.push(
          `INCONSISTENT: ${bucket.describe(cp.key)} signs a root for size ${size} that the archived entries do not make`,
        );
      }
      nextSize++;
    }
  };
  checkRootAt(0, EMPTY_ROOT);
  // Completed tiles' hashes per level, waiting to fill the tile above.
  const levels: Uint8Array[][] = [];
  const derived = new Set<string>();
  const compareTile = (level: number, index: number, hashes: Uint8Array[]) => {
    const id = `${level}/${index}`;
    derived.add(id);
    const key = tileKeys.get(id);
    if (key === undefined) {
      problems.push(`tile/${id} is missing from the archive`);
      return Promise.resolve();
    }
    return read(key).then((stored) => {
      if (!bytesEqual(stored, encodeHashTile(hashes))) {
        problems.push(`${bucket.describe(key)} is not the tile its entries make`);
      }
    });
  };
  let bundles = 0;
  for (let n = 0; bundleKeys.has(n); n++) {
    const key = bundleKeys.get(n) as string;
    for (let k = n; k < n + PARALLEL_READS; k++) {
      readAhead(bundleKeys.get(k));
      readAhead(tileKeys.get(`0/${k}`));
    }
    let leaves: Uint8Array[];
    try {
      leaves = decodeEntryBundle(await read(key), TILE_WIDTH).map((e) => hashLeaf(e));
    } catch (e) {
      problems.push(`${bucket.describe(key)}: ${(e as Error).message}`);
      break;
    }
    for (const leaf of leaves) {
      range.append(leaf);
      if (nextSize < sizes.length && sizes[nextSize] === range.end)
        checkRootAt(range.end, range.root());
    }
    // The level-0 tile of this bundle, and every tile above it that it completes.
    let hashes = leaves;
    let index = n;
    for (let level = 0; ; level++) {
      await compareTile(level, index, hashes);
      levels[level + 1] ??= [];
      const up = levels[level + 1] as Uint8Array[];
      up.push(perfectSubtreeRoot(hashes));
      if (up.length < TILE_WIDTH) break;
      hashes = up.splice(0, TILE_WIDTH);
      index = (range.end / TILE_WIDTH ** (level + 2) - 1) | 0;
    }
    bundles++;
  }
  const gaps = [...bundleKeys.keys()].filter((n) => n >= bundles);
  if (gaps.length > 0) {
    problems.push(
      `bundle ${bundles} is missing but later ones are there (${gaps.slice(0, 5).join(", ")}…)`,
    );
  }
  for (const id of tileKeys.keys()) {
    if (!derived.has(id))
      problems.push(`tile/${id} is in the archive without the bundles beneath it`);
  }
  const entries = bundles * TILE_WIDTH;
  return {
    objects: oldest.size,
    bundles,
    tiles: tileKeys.size,
    checkpoints,
    entries,
    largestCheckpoint: sizes.length === 0 ? 0 : (sizes[sizes.length - 1] as number),
    tailCheckpoints: sizes.filter((s) => s > entries).length,
    problems,
  };
}
