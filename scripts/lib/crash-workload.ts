/**
 * What the crash test's child submits and reports, shared by the child (scripts/lib/crash-child.ts)
 * and the parent (scripts/crash-test.ts) so the parent can rebuild every payload from its seed.
 *
 * A seed is `r<run>s<seq>`. Its payload is the seed's text, a colon, then filler bytes; the
 * length and whether it is submitted with an idempotency key both follow from SHA-256(seed).
 * So a payload names its own seed, and a key always belongs to exactly one payload: the workload
 * never provokes CONFLICT, and any rejection the child sees is a failure.
 */
import { createHash } from "node:crypto";
import { MAX_PAYLOAD_SIZE } from "../../src/core/entry.js";

export const ORIGIN = "crash-test.vellum.example/log";
export const SEED = new Uint8Array(32).fill(7);
export const NAMESPACE = "log";

/** One acknowledged submission, as the child prints it: one JSON object per stdout line. */
export interface AckLine {
  /** Payload seed. */
  readonly s: string;
  readonly index: number;
  readonly id: string;
  readonly timestamp: number;
  /** Base64 RFC 6962 leaf hash. */
  readonly leafHash: string;
  readonly duplicate: boolean;
  /** The C2SP tlog-proof text. */
  readonly proof: string;
}

/** The first line the child prints, once its log is open. */
export const READY = "ready";

const digest = (seed: string) => createHash("sha256").update(seed).digest();

/** Most payloads are small, a fifth are a few KiB, one in fifty is near the size limit. */
function payloadLength(h: Buffer): number {
  const roll = h[0]!;
  if (roll < 200) return 16 + h[1]!;
  if (roll < 251) return 1024 + (h.readUInt16BE(2) % 7168);
  return MAX_PAYLOAD_SIZE - (h.readUInt16BE(2) % 4096);
}

export function payloadFor(seed: string): Uint8Array {
  const h = digest(seed);
  const head = Buffer.from(`${seed}:`);
  const out = new Uint8Array(Math.max(head.length, payloadLength(h)));
  out.set(head);
  for (let at = head.length; at < out.length; at += h.length) {
    out.set(h.subarray(0, Math.min(h.length, out.length - at)), at);
  }
  return out;
}

/** The seed a payload was built from: its text up to the first colon. */
export function seedOf(payload: Uint8Array): string {
  const colon = payload.indexOf(0x3a);
  return colon < 0 ? "" : Buffer.from(payload.subarray(0, colon)).toString("latin1");
}

/** One payload in four carries an idempotency key, derived from its seed. */
export function keyFor(seed: string): string | undefined {
  return digest(seed)[4]! < 64 ? `key-${seed}` : undefined;
}

/**
 * The seeds run `run` submits: mostly fresh ones, one in ten a duplicate of this run's (which may
 * still be in flight), one in twenty a duplicate of an earlier run's (which may or may not have
 * landed before its kill).
 */
export function seedPicker(run: number): () => string {
  let next = 0;
  const below = (n: number) => Math.floor(Math.random() * n);
  return () => {
    const roll = Math.random();
    if (roll < 0.1 && next > 0) return `r${run}s${below(next)}`;
    if (roll < 0.15 && run > 0) return `r${below(run)}s${below(300)}`;
    return `r${run}s${next++}`;
  };
}
