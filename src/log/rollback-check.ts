/**
 * @module
 * The start-up rollback check against witnesses: a log whose storage is behind what any of its
 * witnesses cosigned signs nothing.
 *
 * Why: DATA/checkpoint (and the state mirror) are the log's own memory of what it published; a
 * backup restored with them, or an operator deleting them, erases that memory. Witnesses keep
 * theirs elsewhere. A log restored to size 1000 after witnesses cosigned size 1370 would, on its
 * next batch, sign a second root for sizes 1001…1370: a fork that every receipt holder and
 * witness can prove. So before it signs anything, the log offers each witness its latest stored
 * checkpoint (C2SP tlog-witness add-checkpoint with old = its size, `WitnessCollector.probe`).
 *
 * Invariant: the check passes only when the witnesses that answered "consistent" meet the
 * policy's quorum and no witness proved the storage behind (a larger size, or another tree). A
 * witness that proves it behind fails the check for good (STATE_MISMATCH); unanswered witnesses
 * are asked again with back-off, and until then the caller signs nothing.
 *
 * The standard add-checkpoint call is used rather than a witness's monitoring endpoint (Vellum's
 * `GET /<hash>/checkpoint`): every tlog-witness has it, the answer comes under the witness's own
 * lock, and a smaller witness size is followed by a consistency proof, which also catches a
 * storage that holds another history. Limit: the check is as strong as the quorum's overlap. If
 * two quorums can be disjoint (e.g. 1 of 2), the witnesses that answer may all be ones that
 * missed the newest checkpoints; a policy whose quorums always share a witness (a majority)
 * cannot be fooled this way.
 */
import { nextBackoff } from "../core/backoff.js";
import { VellumError } from "../core/errors.js";
import { quorumSatisfied } from "../core/policy.js";
import type { ProbeAnswer, ProofFor, WitnessCollector } from "./witnessing.js";

export type RollbackCheckState = "checking" | "passed" | "failed";

export interface RollbackCheckStatus {
  readonly state: RollbackCheckState;
  /** One line: what is being waited for, or why the check failed. */
  readonly detail: string;
  /** Rounds of questions asked so far. */
  readonly rounds: number;
  /** Each witness's latest answer ("not asked yet" before the first round). */
  readonly witnesses: readonly { readonly name: string; readonly answer: string }[];
  /** Milliseconds until the next round, while checking. */
  readonly nextRoundMs: number | null;
}

export interface RollbackCheckOptions {
  /** Pause before the second round; doubled each round up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /** Called after every round (and when the check ends). */
  readonly onRound?: (status: RollbackCheckStatus) => void;
}

/** The checkpoint being checked: the log's latest stored one. */
export interface CheckedCheckpoint {
  readonly note: string;
  readonly size: number;
}

export class RollbackCheck {
  readonly #collector: WitnessCollector;
  readonly #latest: CheckedCheckpoint;
  readonly #origin: string;
  readonly #proofFor: ProofFor;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #onRound: ((status: RollbackCheckStatus) => void) | undefined;
  readonly #answers = new Map<string, ProbeAnswer>();
  #state: RollbackCheckState = "checking";
  #detail = "the witnesses have not been asked yet";
  #rounds = 0;
  #nextRoundMs: number | null = null;
  #cancelled = false;
  #wake: (() => void) | undefined;

  constructor(
    collector: WitnessCollector,
    origin: string,
    latest: CheckedCheckpoint,
    proofFor: ProofFor,
    options: RollbackCheckOptions = {},
  ) {
    this.#collector = collector;
    this.#origin = origin;
    this.#latest = latest;
    this.#proofFor = proofFor;
    this.#retryMs = options.retryMs ?? 1000;
    this.#maxRetryMs = options.maxRetryMs ?? 30_000;
    this.#onRound = options.onRound;
  }

  status(): RollbackCheckStatus {
    return {
      state: this.#state,
      detail: this.#detail,
      rounds: this.#rounds,
      witnesses: this.#collector.policy.witnesses.map((w) => ({
        name: w.name,
        answer: describe(this.#answers.get(w.name)),
      })),
      nextRoundMs: this.#nextRoundMs,
    };
  }

  /**
   * Asks every witness that has not answered yet, all at once, and waits for each (bounded by
   * the collector's timeout). Resolves true once the check passed, false while it must wait;
   * rejects with STATE_MISMATCH if a witness proved the storage behind.
   */
  async round(): Promise<boolean> {
    if (this.#state !== "checking") return this.#state === "passed";
    const asking = this.#collector.policy.witnesses
      .map((w) => w.name)
      .filter((name) => this.#answers.get(name)?.kind !== "consistent");
    const answers = await Promise.all(
      asking.map((name) =>
        this.#collector.probe(name, this.#latest.note, this.#latest.size, this.#proofFor),
      ),
    );
    for (const [i, name] of asking.entries()) this.#answers.set(name, answers[i]!);
    this.#rounds++;
    const behind = [...this.#answers].filter(
      ([, a]) => a.kind === "ahead" || a.kind === "conflict",
    );
    if (behind.length > 0) {
      const error = this.#behindError(behind);
      this.#state = "failed";
      this.#detail = error.message;
      this.#report();
      throw error;
    }
    const confirmed = new Set(
      [...this.#answers].filter(([, a]) => a.kind === "consistent").map(([name]) => name),
    );
    if (quorumSatisfied(this.#collector.policy, confirmed)) {
      this.#state = "passed";
      this.#detail = `witnesses ${[...confirmed].join(", ") || "(none needed)"} confirmed that storage (size ${this.#latest.size}) holds everything they cosigned`;
      this.#report();
      return true;
    }
    const unanswered = [...this.#answers]
      .filter(([, a]) => a.kind === "unanswered")
      .map(([name, a]) => `${name}: ${describe(a)}`);
    this.#detail = `signing nothing until witnesses meeting the quorum "${this.#collector.policy.quorum}" confirm that storage (size ${this.#latest.size}) is not behind what they cosigned; confirmed so far: ${[...confirmed].join(", ") || "none"}; ${unanswered.join("; ")}`;
    return false;
  }

  /**
   * After a first `round()` that did not pass: more rounds until the check passes (resolves
   * true), fails (rejects STATE_MISMATCH) or is cancelled (resolves false), pausing `retryMs`
   * before the first, doubled each time up to `maxRetryMs`.
   */
  async untilPassed(): Promise<boolean> {
    let pause = this.#retryMs;
    for (;;) {
      this.#nextRoundMs = pause;
      this.#report();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
      this.#nextRoundMs = null;
      if (this.#cancelled) return false;
      if (await this.round()) return true;
      pause = nextBackoff(pause, this.#maxRetryMs);
    }
  }

  /** Stops further rounds (the log is closing). */
  cancel(): void {
    this.#cancelled = true;
    this.#wake?.();
  }

  #report(): void {
    this.#onRound?.(this.status());
  }

  #behindError(behind: [string, ProbeAnswer][]): VellumError {
    const size = this.#latest.size;
    const urls = new Map(this.#collector.policy.witnesses.map((w) => [w.name, w.url]));
    const what = behind.map(([name, a]) => {
      const who = `witness ${name}${urls.get(name) === undefined ? "" : ` (${urls.get(name)})`}`;
      if (a.kind === "ahead") {
        return `${who} cosigned size ${a.witnessSize} for "${this.#origin}", but storage holds only ${size} entries`;
      }
      return `${who}: ${a.kind === "conflict" ? a.reason : ""}`;
    });
    const largest = Math.max(
      ...behind.map(([, a]) => (a.kind === "ahead" ? a.witnessSize : 0)),
      size,
    );
    const sizes =
      largest > size
        ? `a new checkpoint would give sizes ${size + 1}…${largest} a second root`
        : "a new checkpoint would extend another history than the one witnessed";
    return new VellumError(
      "STATE_MISMATCH",
      `storage is behind what this log's witnesses cosigned: ${what.join("; ")}. Storage was rolled back (a data directory restored from an older backup?) or holds another history; the log signs nothing, since ${sizes}. What to do: restore a newer backup that holds at least size ${largest} (the same check runs at the next start); or, knowingly, start a new log with a new origin (another --data directory and --origin) and tell its users — never sign these sizes again under this origin.`,
    );
  }
}

function describe(a: ProbeAnswer | undefined): string {
  if (a === undefined) return "not asked yet";
  switch (a.kind) {
    case "consistent":
      return `consistent (it had cosigned size ${a.witnessSize})`;
    case "ahead":
      return `storage is behind: it cosigned size ${a.witnessSize}`;
    case "conflict":
      return `another history: ${a.reason}`;
    case "unanswered":
      return a.reason;
  }
}
