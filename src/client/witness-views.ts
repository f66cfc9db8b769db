/**
 * @module
 * Comparing the log with what its witnesses saw (pure; `fetch` only). Each witness in a policy
 * serves the latest checkpoint it cosigned at `<url>/<hex SHA-256(origin)>/checkpoint`. A log that
 * showed a witness another history than it shows this monitor is caught here: the witness's
 * checkpoint is signed by the log, and if its root is not the root of the monitor's tree at that
 * size, the two signed checkpoints plus a consistency proof built from the log's own tiles are
 * evidence anyone can re-check.
 */
import { base64Encode, bytesEqual, hexEncode } from "../core/bytes.js";
import { openCheckpoint } from "../core/checkpoint.js";
import { foldRight } from "../core/compact.js";
import { sha256 } from "../core/crypto.js";
import { verifierFromKey } from "../core/keys.js";
import { rangeNodes } from "../core/merkle.js";
import type { Policy } from "../core/policy.js";
import { EMPTY_ROOT } from "../core/rfc6962.js";
import { verifyConsistency } from "../core/verify.js";
import { EVIDENCE_FORMAT, type Evidence, MonitorError } from "./monitor-evidence.js";
import type { TileReader } from "./tiles.js";

export interface WitnessView {
  readonly witness: string;
  readonly url: string;
  /** consistent: the witness saw this tree; ahead: it saw a larger one than the log showed us. */
  readonly status: "consistent" | "ahead" | "no-checkpoint" | "unreachable";
  readonly size: number | null;
  readonly detail?: string;
}

export interface CompareOptions {
  readonly reader: TileReader;
  readonly logKey: string;
  readonly policy: Policy;
  /** The monitor's verified checkpoint (signed note) and its size and root. */
  readonly checkpoint: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
}

/** Fetches each witness's view and checks it; throws MonitorError (INCONSISTENT) on a fork. */
export async function compareWitnessViews(options: CompareOptions): Promise<WitnessView[]> {
  const logVerifier = verifierFromKey(options.logKey);
  const origin = logVerifier.name;
  const path = `/${hexEncode(sha256(new TextEncoder().encode(origin)))}/checkpoint`;
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const views: WitnessView[] = [];
  for (const w of options.policy.witnesses) {
    if (w.url === undefined) continue;
    const url = `${w.url.replace(/\/+$/, "")}${path}`;
    const unreachable = (detail: string) =>
      views.push({ witness: w.name, url, status: "unreachable", size: null, detail });
    let note: string;
    try {
      const res = await doFetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
      if (res.status === 404) {
        views.push({ witness: w.name, url, status: "no-checkpoint", size: null });
        continue;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      note = await res.text();
    } catch (e) {
      unreachable((e as Error).message);
      continue;
    }
    // Only checkpoints the log itself signed count (anything else is the witness's problem).
    let theirs: ReturnType<typeof openCheckpoint>["checkpoint"];
    try {
      theirs = openCheckpoint(note, logVerifier).checkpoint;
    } catch (e) {
      unreachable(`not a checkpoint signed by the log: ${(e as Error).message}`);
      continue;
    }
    if (theirs.size > options.size) {
      views.push({ witness: w.name, url, status: "ahead", size: theirs.size });
      continue;
    }
    const ours =
      theirs.size === 0
        ? EMPTY_ROOT
        : foldRight(await options.reader.nodeHashes(rangeNodes(0, theirs.size), options.size))!;
    if (!bytesEqual(ours, theirs.rootHash)) {
      const proof = await options.reader.consistencyProof(theirs.size, options.size);
      // The tiles connect `ours` to the monitor's root; the witness's root cannot be connected.
      verifyConsistency(theirs.size, options.size, proof, ours, options.rootHash);
      const evidence: Evidence = {
        format: EVIDENCE_FORMAT,
        code: "INCONSISTENT",
        reason: `witness ${w.name} holds a checkpoint of size ${theirs.size} signed by the log whose root is not the root of the tree the log shows at that size: a split view`,
        origin,
        logKey: options.logKey,
        url,
        detectedAt: new Date().toISOString(),
        previous: { size: theirs.size, rootHash: base64Encode(theirs.rootHash), note },
        checkpoint: {
          size: options.size,
          rootHash: base64Encode(options.rootHash),
          note: options.checkpoint,
        },
        expected: base64Encode(ours),
        actual: base64Encode(theirs.rootHash),
        consistency: {
          from: theirs.size,
          to: options.size,
          oldRoot: base64Encode(ours),
          proof: proof.map(base64Encode),
        },
      };
      throw new MonitorError(evidence);
    }
    views.push({ witness: w.name, url, status: "consistent", size: theirs.size });
  }
  return views;
}
