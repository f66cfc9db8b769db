/**
 * @module
 * Gathering witness cosignatures for the log's checkpoints (C2SP tlog-witness, client side).
 *
 * For each checkpoint, every witness of the policy is asked in parallel, with the consistency
 * proof from the size the log believes that witness has. A 409 teaches the witness's real size
 * (one retry with it); each request has a timeout, so a slow or dead witness costs at most that.
 * Cosignature lines are kept only if they verify with the witness's key from the policy; the
 * merged note meets the quorum or the caller does not publish it.
 *
 * `probe` asks one witness, through the same add-checkpoint call, what it last cosigned for the
 * log (the start-up rollback check, src/log/rollback-check.ts).
 */
import { base64Encode, parseDecimal } from "../core/bytes.js";
import type { NoteVerifier } from "../core/keys.js";
import { type Logger, silentLogger } from "../core/logger.js";
import { parseNote, verifyKnownSignatures } from "../core/note.js";
import { type Policy, quorumSatisfied, witnessVerifiers } from "../core/policy.js";

export interface WitnessStatus {
  readonly name: string;
  readonly url: string | null;
  readonly verifierKey: string;
  /** The size this witness last cosigned for the log, as far as the log knows. */
  readonly cosignedSize: number | null;
  readonly lastError: string | null;
  /** Milliseconds since the epoch of the last successful cosignature. */
  readonly lastSuccess: number | null;
}

export interface CosignResult {
  /** The checkpoint note with every verified cosignature appended (in policy order). */
  readonly note: string;
  readonly witnesses: ReadonlySet<string>;
  readonly quorum: boolean;
}

export type ProofFor = (from: number, to: number) => Promise<Uint8Array[]>;

/**
 * What a witness's answer to `probe` proves about the log's stored tree (latest checkpoint of
 * size S) against what that witness cosigned (size W):
 * - `consistent`: it cosigned this checkpoint (W = S with the same root, or W < S and the
 *   consistency proof from W verified), so storage holds everything it ever cosigned;
 * - `ahead`: W > S, so storage lost entries the witness saw (a rollback);
 * - `conflict`: another root at W = S, or no valid proof from W < S: storage holds another tree
 *   than the one the witness cosigned (a rollback followed by new entries, or a fork);
 * - `unanswered`: nothing proven either way (unreachable, timeout, not trusting this log's key).
 */
export type ProbeAnswer =
  | { readonly kind: "consistent" | "ahead"; readonly witnessSize: number }
  | { readonly kind: "conflict"; readonly witnessSize: number; readonly reason: string }
  | { readonly kind: "unanswered"; readonly reason: string };

/** One add-checkpoint exchange: a 409's size, or the status and body text. */
type Exchange = { readonly size: number } | { readonly status: number; readonly text: string };

interface Member {
  readonly name: string;
  readonly url: string | undefined;
  readonly vkey: string;
  readonly verifier: NoteVerifier;
  known: number;
  cosigned: number | null;
  lastError: string | null;
  lastSuccess: number | null;
}

/** One cosigning round: how long until it was answered, and whether the quorum was met. */
export interface WitnessRound {
  readonly seconds: number;
  readonly quorum: boolean;
}

export interface WitnessCollectorOptions {
  /** How long to wait for each witness (default 2000 ms). */
  readonly timeoutMs?: number;
  /** Where each witness's failure to cosign is said (warn; default: nowhere). */
  readonly logger?: Logger;
  /** Called when each round is answered (for the round-latency histogram). */
  readonly onRound?: (round: WitnessRound) => void;
}

export class WitnessCollector {
  readonly policy: Policy;
  readonly #members: Member[];
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #onRound: ((round: WitnessRound) => void) | undefined;

  constructor(policy: Policy, options: WitnessCollectorOptions = {}) {
    this.policy = policy;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#logger = options.logger ?? silentLogger;
    this.#onRound = options.onRound;
    const verifiers = witnessVerifiers(policy);
    this.#members = policy.witnesses.map((w) => ({
      name: w.name,
      url: w.url,
      vkey: w.vkey,
      verifier: verifiers.get(w.name)!,
      known: 0,
      cosigned: null,
      lastError: w.url === undefined ? "no URL in the policy" : null,
      lastSuccess: null,
    }));
  }

  status(): WitnessStatus[] {
    return this.#members.map((m) => ({
      name: m.name,
      url: m.url ?? null,
      verifierKey: m.vkey,
      cosignedSize: m.cosigned,
      lastError: m.lastError,
      lastSuccess: m.lastSuccess,
    }));
  }

  /**
   * Asks every witness to cosign `note` (a checkpoint of `size`), in parallel, and answers as soon
   * as the cosignatures in hand meet the quorum (or every witness has answered): a slow witness
   * does not hold up publishing. Late answers still update what the log knows of that witness.
   */
  cosign(note: string, size: number, proofFor: ProofFor): Promise<CosignResult> {
    const start = performance.now();
    const round = new Promise<CosignResult>((resolve) => {
      const lines: (string | undefined)[] = this.#members.map(() => undefined);
      let pending = this.#members.length;
      let done = false;
      const result = (): CosignResult => {
        const witnesses = new Set<string>();
        let merged = note;
        this.#members.forEach((m, i) => {
          if (lines[i] !== undefined) {
            merged += lines[i];
            witnesses.add(m.name);
          }
        });
        return { note: merged, witnesses, quorum: quorumSatisfied(this.policy, witnesses) };
      };
      if (pending === 0) resolve(result());
      this.#members.forEach((m, i) => {
        void this.#ask(m, note, size, proofFor).then((line) => {
          lines[i] = line;
          if (line === undefined && m.url !== undefined) {
            this.#logger.warn(
              { witness: m.name, size },
              `witness ${m.name} did not cosign size ${size}: ${m.lastError}`,
            );
          }
          pending--;
          if (done) return;
          const now = result();
          if (now.quorum || pending === 0) {
            done = true;
            resolve(now);
          }
        });
      });
    });
    const onRound = this.#onRound;
    if (onRound === undefined) return round;
    return round.then((r) => {
      try {
        onRound({ seconds: (performance.now() - start) / 1000, quorum: r.quorum });
      } catch {
        // A failing metrics hook must not fail the round.
      }
      return r;
    });
  }

  /**
   * Asks witness `name` what it cosigned for this log by offering it `note` (the latest stored
   * checkpoint, of `size`) with old = `size` and no proof: the witness either cosigns that same
   * checkpoint again (same size, same root) or answers 409 with its size. A smaller size is
   * followed up with the consistency proof from it (a normal cosigning step, which advances the
   * witness to `size`). Nothing new is signed by the log for this.
   */
  async probe(name: string, note: string, size: number, proofFor: ProofFor): Promise<ProbeAnswer> {
    const m = this.#members.find((w) => w.name === name);
    if (m === undefined) throw new Error(`no witness "${name}" in the policy`);
    if (m.url === undefined) return { kind: "unanswered", reason: "no URL in the policy" };
    try {
      let old = size;
      for (let attempt = 0; attempt < 3; attempt++) {
        const proof = old === size || old === 0 ? [] : await proofFor(old, size);
        const answer = await this.#exchange(m.url, old, proof, note);
        if ("size" in answer) {
          m.known = answer.size;
          if (answer.size > size) {
            m.lastError = `the witness has size ${answer.size}, beyond the log's ${size}`;
            return { kind: "ahead", witnessSize: answer.size };
          }
          if (answer.size === old) {
            // A 409 that repeats `old` is the witness's "same size, another root" (its fork check).
            m.lastError = `the witness cosigned another root for size ${old}`;
            return {
              kind: "conflict",
              witnessSize: old,
              reason: `it cosigned another root for size ${old}`,
            };
          }
          old = answer.size;
          continue;
        }
        if (answer.status === 422 && old > 0 && old < size) {
          m.lastError = `HTTP 422: ${answer.text.trim().slice(0, 200)}`;
          return {
            kind: "conflict",
            witnessSize: old,
            reason: `this storage's tree does not extend the size-${old} tree it cosigned (${answer.text.trim().slice(0, 200)})`,
          };
        }
        if (answer.status !== 200) {
          m.lastError = `HTTP ${answer.status}: ${answer.text.trim().slice(0, 200)}`;
          return { kind: "unanswered", reason: m.lastError };
        }
        if (this.#verifiedLines(m, note, answer.text) === undefined) {
          m.lastError = "the answer holds no valid cosignature from this witness's key";
          return { kind: "unanswered", reason: m.lastError };
        }
        this.#cosigned(m, size);
        return { kind: "consistent", witnessSize: old };
      }
      m.lastError = "the witness's size kept changing";
      return { kind: "unanswered", reason: m.lastError };
    } catch (e) {
      m.lastError = this.#failure(e);
      return { kind: "unanswered", reason: m.lastError };
    }
  }

  async #ask(
    m: Member,
    note: string,
    size: number,
    proofFor: ProofFor,
  ): Promise<string | undefined> {
    if (m.url === undefined) return undefined;
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const old = m.known <= size ? m.known : 0;
        const proof = old === 0 ? [] : await proofFor(old, size);
        const answer = await this.#exchange(m.url, old, proof, note);
        if ("size" in answer) {
          if (answer.size > size) {
            m.lastError = `the witness has size ${answer.size}, beyond this checkpoint's ${size}`;
            m.known = answer.size;
            return undefined;
          }
          m.known = answer.size;
          continue;
        }
        if (answer.status !== 200) {
          m.lastError = `HTTP ${answer.status}: ${answer.text.trim().slice(0, 200)}`;
          return undefined;
        }
        const valid = this.#verifiedLines(m, note, answer.text);
        if (valid === undefined) {
          m.lastError = "the answer holds no valid cosignature from this witness's key";
          return undefined;
        }
        this.#cosigned(m, size);
        return valid;
      }
      m.lastError = "the witness's size kept changing";
      return undefined;
    } catch (e) {
      m.lastError = this.#failure(e);
      return undefined;
    }
  }

  /** One POST /add-checkpoint, with the request timeout. */
  async #exchange(url: string, old: number, proof: Uint8Array[], note: string): Promise<Exchange> {
    const body = `old ${old}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${note}`;
    const res = await fetch(`${url.replace(/\/$/, "")}/add-checkpoint`, {
      method: "POST",
      body,
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await res.text();
    if (
      res.status === 409 &&
      (res.headers.get("Content-Type") ?? "").startsWith("text/x.tlog.size")
    ) {
      return { size: parseDecimal(text.trim(), "witness size") };
    }
    return { status: res.status, text };
  }

  #cosigned(m: Member, size: number): void {
    m.known = size;
    m.cosigned = size;
    m.lastError = null;
    m.lastSuccess = Date.now();
  }

  #failure(e: unknown): string {
    if ((e as Error).name === "TimeoutError") return `no answer within ${this.#timeoutMs} ms`;
    // fetch says only "fetch failed"; the cause says why (ECONNREFUSED, ENOTFOUND, …).
    const code = (e as { cause?: { code?: unknown } }).cause?.code;
    return typeof code === "string" ? `${(e as Error).message} (${code})` : (e as Error).message;
  }

  /** The answer's signature lines that verify with the witness's key (others are dropped). */
  #verifiedLines(m: Member, note: string, answer: string): string | undefined {
    if (!answer.endsWith("\n") || answer.length > 16 * 1024) return undefined;
    const lines = answer.slice(0, -1).split("\n");
    const keep: string[] = [];
    for (const line of lines) {
      try {
        const parsed = parseNote(`${note}${line}\n`);
        const sig = parsed.signatures.at(-1)!;
        if (sig.name !== m.verifier.name || sig.keyId !== m.verifier.keyId) continue;
        const verified = verifyKnownSignatures({ text: parsed.text, signatures: [sig] }, [
          m.verifier,
        ]);
        if (verified.signatures.length === 1) keep.push(`${line}\n`);
      } catch {
        // A malformed or invalid line is ignored, as the spec asks of clients.
      }
    }
    return keep.length > 0 ? keep.join("") : undefined;
  }
}
