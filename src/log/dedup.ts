/**
 * @module
 * A log's deduplication rule: which submissions are answered with an existing entry instead of
 * becoming a new one. A per-log setting, stored with the log (key "d" in the embedded layout, src/storage/kv-log-layout.ts), because the
 * rule decides which lookup keys every batch writes, so it cannot change freely between restarts.
 *
 *   "key"      only a submission carrying an idempotency key already used is a duplicate (its
 *              original is returned; with another payload it is a CONFLICT). Identical payloads
 *              without a key are distinct entries: two identical audit events are two events.
 *              The payload-hash index ("p") is not written at all. The default for new logs.
 *   "payload"  also a payload already in the log, byte for byte, is a duplicate, whoever sent it
 *              and with or without a key (a certificate-transparency style log). The only rule
 *              before the setting existed.
 *
 * Which rule a log follows when it opens (`decideDedup`):
 *   - a new log: the one requested, else "key"; stored in the log's first write;
 *   - a log with a stored rule and none requested, or the same one requested: the stored rule;
 *   - a log created before the setting existed (tree state, no "d"): "payload", its rule until
 *     then, unless "key" is requested;
 *   - "key" requested of a "payload" log: the log changes to "key", and the change is stored. It
 *     is safe: the idempotency-key index is written under both rules, old entries and receipts
 *     stay as they are, only later identical payloads become new entries;
 *   - "payload" requested of a "key" log: refused (STATE_MISMATCH). Entries sequenced under
 *     "key" have no payload index, so payload dedup would silently miss them.
 */
import { VellumError } from "../core/errors.js";

import type { DedupRule } from "../storage/log-store.js";

export type DedupMode = DedupRule;
export const DEDUP_MODES: readonly DedupMode[] = ["key", "payload"];

/** A rule named on a command line or in a configuration (`what` names where it came from). */
export function parseDedup(text: string, what = "dedup"): DedupMode {
  if (text !== "key" && text !== "payload") {
    throw new VellumError(
      "MALFORMED",
      `${what} must be "key" or "payload", not "${text.slice(0, 40)}"`,
    );
  }
  return text;
}

export interface DedupDecision {
  readonly mode: DedupMode;
  /** The rule must be stored (a new log's first write, or a change). */
  readonly store: boolean;
  /** A change of an existing log's rule, said in the server's log. */
  readonly changed?: string;
}

/**
 * The rule a log opens with, from what storage holds (`stored`; `exists`: the log has a tree
 * state) and what the operator asked for (`requested`, undefined when not asked).
 */
export function decideDedup(
  stored: DedupMode | undefined,
  exists: boolean,
  requested: DedupMode | undefined,
): DedupDecision {
  if (!exists) return { mode: requested ?? "key", store: true };
  const current = stored ?? "payload"; // created before the setting: payload dedup throughout
  if (requested === undefined || requested === current) return { mode: current, store: false };
  if (requested === "key") {
    return {
      mode: "key",
      store: true,
      changed: `deduplication changed from "payload" to "key": from now on identical payloads without an idempotency key are distinct entries (existing entries and receipts are unchanged; this cannot be undone)`,
    };
  }
  throw new VellumError(
    "STATE_MISMATCH",
    `this log deduplicates by idempotency key (stored with its data) and cannot change to "payload": entries it sequenced have no payload index, so payload dedup would miss them. Start it without --dedup (or with --dedup key)`,
  );
}
