/**
 * The load the fault suite puts on a real `vellum serve` over 127.0.0.1, and what it remembers:
 * every acknowledged entry (a 200/201 whose receipt verifies offline with the log's key and the
 * payload) and every other answer, counted by phase ("load", "fault", "cleared", …) and by
 * `<status> <code>`, with the first detail of each, plus what `/readyz` said meanwhile.
 *
 * Acknowledged is what a client holds: a receipt. Every payload is fresh and unique
 * (`<tag>:<seq>:` then random bytes), so an entry's bytes are known exactly; nothing is
 * resubmitted, so each acknowledgement is one distinct entry.
 */
import { randomBytes } from "node:crypto";
import { base64Decode, bytesEqual } from "../../src/core/bytes.js";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { decodeLeafFields, leafFromFields } from "../../src/core/entry.js";
import type { NoteVerifier } from "../../src/core/keys.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import { parseTlogProof, verifyTlogProof } from "../../src/core/tlog-proof.js";

/** One acknowledged entry and the signed checkpoint its receipt proves it against. */
export interface Ack {
  readonly index: number;
  readonly payload: Uint8Array;
  readonly leafHash: Uint8Array;
  readonly size: number;
  readonly root: Uint8Array;
  readonly note: string;
  readonly phase: string;
}

/** Counts by key, in the order keys first appeared. */
export type Tally = Map<string, number>;

const bump = (t: Tally, key: string) => t.set(key, (t.get(key) ?? 0) + 1);

export function formatTally(t: Tally | undefined): string {
  if (t === undefined || t.size === 0) return "-";
  return [...t].map(([k, n]) => `${k}×${n}`).join(", ");
}

interface Problem {
  code?: string;
  detail?: string;
}

export interface WorkloadOptions {
  readonly url: string;
  readonly token: string;
  readonly logKey: NoteVerifier;
  /** Distinguishes this workload's payloads from other runs' in the same log. */
  readonly tag: string;
  /** Random bytes after the `<tag>:<seq>:` head; the default 200-1200. */
  readonly payloadBytes?: readonly [number, number];
  readonly requestTimeoutMs?: number;
}

export class Workload {
  readonly acked = new Map<number, Ack>();
  /** phase → `<status> <code>` (or `network`) → count. */
  readonly answers = new Map<string, Tally>();
  /** phase → `/readyz` answer (`<status> <body status>`) → count. */
  readonly readyz = new Map<string, Tally>();
  /** The first few distinct details seen for each answer key, e.g. a 503's text naming ENOSPC. */
  readonly details = new Map<string, string[]>();
  /** Acknowledgements whose receipt did not verify: must stay empty. */
  readonly badReceipts: string[] = [];
  phase = "load";
  readonly #o: WorkloadOptions;
  #seq = 0;
  #running: Promise<void>[] = [];
  #stop = false;

  constructor(o: WorkloadOptions) {
    this.#o = o;
  }

  /** Acknowledgements received in `phase`. */
  acks(phase?: string): number {
    if (phase === undefined) return this.acked.size;
    let n = 0;
    for (const a of this.acked.values()) if (a.phase === phase) n++;
    return n;
  }

  /** Answers of `phase` that were not a 2xx. */
  failures(phase: string): number {
    let n = 0;
    for (const [k, c] of this.answers.get(phase) ?? []) if (!k.startsWith("2")) n += c;
    return n;
  }

  /** The largest tree size any receipt names (0 if none). */
  maxSize(): number {
    let max = 0;
    for (const a of this.acked.values()) max = Math.max(max, a.size);
    return max;
  }

  #detail(key: string, detail: string): void {
    const seen = this.details.get(key) ?? [];
    if (seen.length < 5 && !seen.includes(detail)) seen.push(detail);
    this.details.set(key, seen);
  }

  #payload(): Uint8Array {
    const [lo, hi] = this.#o.payloadBytes ?? [200, 1200];
    const head = Buffer.from(`${this.#o.tag}:${this.#seq++}:`);
    return new Uint8Array(
      Buffer.concat([head, randomBytes(lo + Math.floor(Math.random() * (hi - lo + 1)))]),
    );
  }

  /** Submits one fresh entry; records the answer. Returns whether it was acknowledged. */
  async submitOne(): Promise<boolean> {
    const payload = this.#payload();
    const phase = this.phase;
    const tally = this.answers.get(phase) ?? new Map<string, number>();
    this.answers.set(phase, tally);
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.#o.url}/v1/entries`, {
        method: "POST",
        body: payload,
        headers: {
          Authorization: `Bearer ${this.#o.token}`,
          "Content-Type": "application/octet-stream",
        },
        signal: AbortSignal.timeout(this.#o.requestTimeoutMs ?? 15_000),
      });
      text = await res.text();
    } catch (e) {
      const key = (e as Error).name === "TimeoutError" ? "timeout" : "network";
      bump(tally, key);
      this.#detail(key, (e as Error).message);
      return false;
    }
    if (res.status !== 200 && res.status !== 201) {
      let p: Problem = {};
      try {
        p = JSON.parse(text) as Problem;
      } catch {
        // not a problem document: the status alone says it
      }
      const key = `${res.status}${p.code === undefined ? "" : ` ${p.code}`}`;
      bump(tally, key);
      this.#detail(key, p.detail ?? text.slice(0, 300));
      return false;
    }
    bump(tally, "2xx");
    const body = JSON.parse(text) as { index: number; receipt: string };
    try {
      const proof = parseTlogProof(body.receipt);
      if (proof.extra === undefined) throw new Error("the receipt has no extra");
      const leafHash = hashLeaf(leafFromFields(proof.extra, payload));
      const fields = decodeLeafFields(proof.extra);
      if (fields.leafHash !== undefined && !bytesEqual(fields.leafHash, leafHash)) {
        throw new Error("the receipt's extra names another leaf hash");
      }
      const v = verifyTlogProof(body.receipt, leafHash, this.#o.logKey);
      if (v.index !== body.index) throw new Error(`the receipt proves index ${v.index}`);
      const cp = openCheckpoint(proof.checkpoint, this.#o.logKey).checkpoint;
      this.acked.set(body.index, {
        index: body.index,
        payload,
        leafHash,
        size: cp.size,
        root: cp.rootHash,
        note: proof.checkpoint,
        phase,
      });
    } catch (e) {
      this.badReceipts.push(`index ${body.index}: ${(e as Error).message}`);
      return false;
    }
    return true;
  }

  /** Keeps `concurrency` submissions in flight until stop(). */
  start(concurrency: number): void {
    this.#stop = false;
    const worker = async () => {
      while (!this.#stop) {
        if (!(await this.submitOne())) await new Promise((r) => setTimeout(r, 20));
      }
    };
    this.#running = Array.from({ length: concurrency }, worker);
  }

  /** Stops submitting and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#running);
    this.#running = [];
  }

  /** Samples `/readyz` every `everyMs` into `readyz[phase]` until the returned stop is called. */
  sampleReadyz(everyMs = 100): () => Promise<void> {
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const tally = this.readyz.get(this.phase) ?? new Map<string, number>();
        this.readyz.set(this.phase, tally);
        try {
          const res = await fetch(`${this.#o.url}/readyz`, { signal: AbortSignal.timeout(5000) });
          const body = (await res.json().catch(() => ({}))) as { status?: string };
          bump(tally, `${res.status} ${body.status ?? "?"}`);
        } catch {
          bump(tally, "network");
        }
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
    return async () => {
      stop = true;
      await loop;
    };
  }
}

/** Resolves true once `predicate` holds (polled every 25 ms), false after `ms`. */
export async function waitFor(predicate: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

/** Decodes a base64 field of an API answer. */
export const b64 = (s: string): Uint8Array => base64Decode(s);
