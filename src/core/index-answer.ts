/**
 * @module
 * The verifiable index's commitments and the check of its answers (spec/audit.md, "The index").
 *
 * The index keeps, for every index key (event-keys.ts), the list of the log indices of the
 * events that have it (list-run.ts), and a sparse Merkle map (smt.ts) from the key's hash to the
 * hash of its list's (count, root). Each revision commits
 *
 *   revision = 0x01 ‖ u64be(log size) ‖ log root (32) ‖ map root (32)        (73 bytes)
 *
 * as the payload of one entry of a second, signed log: the index log (`<origin>/index`). An
 * answer to "the events with key K in [from, to)" carries a main checkpoint and the consistency
 * proof from the revision's tree to it, the index-log leaf and its inclusion proof in an index
 * checkpoint, the map proof for K, the run of K's list inside the window's index range
 * (list-run.ts), the window's boundary entries (window.ts) and every result's leaf with one
 * multiproof, all in the revision's tree. `verifyIndexPage` checks it
 * all: a missing, extra, reordered or altered result, a wrong count, a revision for another tree
 * or an index-log leaf the index log does not hold fails.
 *
 * Pure: the caller opens both checkpoints with their keys first and passes what they say.
 */
import { bytesEqual, getUint64, putUint64, utf8Encode } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { decodeLeaf } from "./entry.js";
import { check, VellumError } from "./errors.js";
import { hasKey, type IndexKey, KEY_KINDS } from "./event-keys.js";
import { formatVerifierKey, parseVerifierKey } from "./keys.js";
import { type ListRunPage, verifyListRun } from "./list-run.js";
import { expandMultiproof } from "./multiproof.js";
import { EMPTY_ROOT, hashLeaf } from "./rfc6962.js";
import { type SmtProof, verifySmtProof } from "./smt.js";
import { verifyConsistency, verifyInclusion } from "./verify.js";
import { verifyWindowPage, type WindowEntry, type WindowPage } from "./window.js";

export const REVISION_VERSION = 1;
export const REVISION_SIZE = 73;

/** One index revision: the log tree it covers and the map of that moment. */
export interface IndexRevision {
  readonly logSize: number;
  readonly logRoot: Uint8Array;
  readonly mapRoot: Uint8Array;
}

export function encodeRevision(r: IndexRevision): Uint8Array {
  check(r.logRoot.length === 32 && r.mapRoot.length === 32, "MALFORMED", "roots are 32 bytes");
  const out = new Uint8Array(REVISION_SIZE);
  out[0] = REVISION_VERSION;
  putUint64(out, 1, r.logSize);
  out.set(r.logRoot, 9);
  out.set(r.mapRoot, 41);
  return out;
}

export function decodeRevision(bytes: Uint8Array): IndexRevision {
  check(
    bytes.length === REVISION_SIZE && bytes[0] === REVISION_VERSION,
    "MALFORMED",
    `an index revision is ${REVISION_SIZE} bytes starting with version ${REVISION_VERSION}`,
  );
  return {
    logSize: getUint64(bytes, 1, "revision log size"),
    logRoot: bytes.slice(9, 41),
    mapRoot: bytes.slice(41, 73),
  };
}

/** A key's place in the map: SHA-256(kind ‖ 0x00 ‖ value), both UTF-8. */
export function mapKeyOf(key: IndexKey): Uint8Array {
  check(KEY_KINDS.includes(key.kind), "MALFORMED", `unknown index key kind "${key.kind}"`);
  // One buffer: the kinds are ASCII, written as they are (the index computes this per key).
  const value = utf8Encode(key.value);
  const kind = key.kind;
  const input = new Uint8Array(kind.length + 1 + value.length);
  for (let i = 0; i < kind.length; i++) input[i] = kind.charCodeAt(i);
  input.set(value, kind.length + 1);
  return sha256(input);
}

/** What the map holds for a key: SHA-256(u64be(count) ‖ list root). */
export function mapValueOf(count: number, listRoot: Uint8Array): Uint8Array {
  const buf = new Uint8Array(40);
  putUint64(buf, 0, count);
  buf.set(listRoot, 8);
  return sha256(buf);
}

/** The first page of an answer proves the revision; later pages are pinned to it. */
export interface IndexRevisionProof {
  /** The index-log leaf (`[1, id, timestamp, revision]`) and its place in the index log. */
  readonly leafIndex: number;
  readonly leaf: Uint8Array;
  readonly inclusion: readonly Uint8Array[];
  /** The map proof for the key, and the list's count and root it proves. */
  readonly map: SmtProof;
  /** From the revision's tree to the answer's main checkpoint (empty when they are one). */
  readonly consistency: readonly Uint8Array[];
}

export interface IndexPage {
  /** The main log's size at the revision: windows, runs and results are in this tree. */
  readonly treeSize: number;
  readonly key: IndexKey;
  readonly count: number;
  readonly listRoot: Uint8Array;
  /** Present on a first page. */
  readonly revision?: IndexRevisionProof;
  /** The time window's index range and its boundary entries (a window page with no entries). */
  readonly window: WindowPage;
  /** The key's run inside the window's index range; this page's part of it. */
  readonly run: ListRunPage;
  /** The leaf of every result of the page, by increasing index, and one multiproof. */
  readonly leaves: readonly { readonly index: number; readonly leaf: Uint8Array }[];
  readonly multiproof: readonly Uint8Array[];
}

/** What a verified first page pins for the pages that follow it. */
export interface IndexPin {
  readonly treeSize: number;
  readonly logRoot: Uint8Array;
  readonly key: IndexKey;
  readonly count: number;
  readonly listRoot: Uint8Array;
}

/**
 * Checks an index answer's page. `main` is the opened main checkpoint the answer came with and
 * `index` an opened index-log checkpoint (first pages); `pin` is what the first page proved
 * (later pages, which need neither). Returns the page's events, in log order, and the pin for
 * the pages after it.
 */
export function verifyIndexPage(
  page: IndexPage,
  main: { readonly size: number; readonly root: Uint8Array } | undefined,
  index: { readonly size: number; readonly root: Uint8Array } | undefined,
  pin?: IndexPin,
): { events: WindowEntry[]; pin: IndexPin } {
  check(
    Number.isSafeInteger(page.count) && page.count >= 0 && page.listRoot.length === 32,
    "MALFORMED",
    "an answer's count is an integer ≥ 0 and its list root 32 bytes",
  );
  let logRoot: Uint8Array;
  if (pin !== undefined) {
    logRoot = pin.logRoot;
    check(
      pin.treeSize === page.treeSize &&
        pin.key.kind === page.key.kind &&
        pin.key.value === page.key.value &&
        pin.count === page.count &&
        bytesEqual(pin.listRoot, page.listRoot),
      "INCONSISTENT",
      "a later page is not for the revision, key and list its first page proved",
    );
  } else {
    const proof = page.revision;
    check(
      proof !== undefined && index !== undefined && main !== undefined,
      "MALFORMED",
      "a first page proves its revision against both checkpoints",
    );
    verifyInclusion(proof.leafIndex, index.size, hashLeaf(proof.leaf), proof.inclusion, index.root);
    const revision = decodeRevision(decodeLeaf(proof.leaf).payload);
    check(
      revision.logSize === page.treeSize && revision.logSize <= main.size,
      "INCONSISTENT",
      `the index revision covers ${revision.logSize} entries, the answer says ${page.treeSize} (checkpoint ${main.size})`,
    );
    try {
      verifyConsistency(
        revision.logSize,
        main.size,
        proof.consistency,
        revision.logRoot,
        main.root,
      );
    } catch (e) {
      throw new VellumError(
        "INCONSISTENT",
        `the index revision is for another tree than the log's checkpoint: ${(e as Error).message}`,
      );
    }
    logRoot = revision.logRoot;
    const value = verifySmtProof(revision.mapRoot, mapKeyOf(page.key), proof.map);
    if (value === undefined) {
      check(
        page.count === 0 && bytesEqual(page.listRoot, EMPTY_ROOT),
        "INCONSISTENT",
        `the map proves ${page.key.kind} "${page.key.value}" absent, the answer counts ${page.count}`,
      );
    } else if (!bytesEqual(value, mapValueOf(page.count, page.listRoot))) {
      throw new VellumError(
        "INCONSISTENT",
        `the map holds another count or list for ${page.key.kind} "${page.key.value}" than the answer's ${page.count}`,
      );
    }
  }
  // Where the window lies in the tree: its index range [start, end).
  check(
    page.window.pageStart === page.window.pageEnd,
    "MALFORMED",
    "an index answer's window carries only its boundaries",
  );
  const w = page.window;
  const whole =
    w.from === 0 && w.to === Number.MAX_SAFE_INTEGER && w.start === 0 && w.end === page.treeSize;
  // The whole tree is its own window: every entry's timestamp is in [0, 2^53), no boundary to
  // prove. Any other window is placed by its boundary entries.
  if (!(whole && w.leaves.length === 0)) verifyWindowPage(w, page.treeSize, logRoot);
  const run = page.run;
  check(
    run.from === page.window.start && run.to === page.window.end,
    "INCONSISTENT",
    `the list run is for [${run.from}, ${run.to}), the window is [${page.window.start}, ${page.window.end})`,
  );
  const indices = verifyListRun(run, page.count, page.listRoot);
  const got = page.leaves.map((l) => l.index);
  check(
    got.length === indices.length && got.every((i, k) => i === indices[k]),
    "INCONSISTENT",
    "the answer's entries are not the ones the key's list holds for the page",
  );
  const events: WindowEntry[] = [];
  if (indices.length > 0) {
    const expanded = expandMultiproof(
      indices,
      page.leaves.map((l) => hashLeaf(l.leaf)),
      page.treeSize,
      page.multiproof,
    );
    if (!bytesEqual(expanded.root, logRoot)) {
      throw new VellumError(
        "PROOF_MISMATCH",
        "the answer's entries and multiproof do not make the revision's tree root",
      );
    }
    for (const { index, leaf } of page.leaves) {
      const { timestamp, payload } = decodeLeaf(leaf);
      let event: unknown;
      try {
        event = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
      } catch {
        event = undefined;
      }
      check(
        hasKey(event, page.key),
        "INCONSISTENT",
        `entry ${index} is in the list of ${page.key.kind} "${page.key.value}" but does not have that key`,
      );
      events.push({ index, timestamp, leaf, payload });
    }
  }
  return {
    events,
    pin: {
      treeSize: page.treeSize,
      logRoot,
      key: page.key,
      count: page.count,
      listRoot: page.listRoot,
    },
  };
}

/**
 * The index log's verifier key, from the main log's: the same Ed25519 key under the name
 * `<origin>/index` (its own key id). One key to distribute; a signature on one log's checkpoint
 * can never pass for the other's, since the origin is the first line signed and names the key.
 */
export function indexLogVerifierKey(logVerifierKey: string): string {
  const key = parseVerifierKey(logVerifierKey);
  return formatVerifierKey({ name: `${key.name}/index`, type: key.type, publicKey: key.publicKey });
}
