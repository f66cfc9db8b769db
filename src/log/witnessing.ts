/**
 * @module
 * Gathering witness cosignatures for the log's checkpoints (C2SP tlog-witness, client side).
 *
 * For each checkpoint, every witness of the policy is asked in parallel, with the consistency
 * proof from the size the log believes that witness has. A 409 teaches the witness's real size
 * (one retry with it); each request has a timeout, so a slow or dead witness costs at most that.
 * Cosignature lines are kept only if they verify with the witness's key from the policy; the
 * merged note meets the quorum or the caller does not publish it.
 */
import { base64Encode, parseDecimal } from "../core/bytes.js";
import type { NoteVerifier } from "../core/keys.js";
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

export class WitnessCollector {
  readonly policy: Policy;
  readonly #members: Member[];
  readonly #timeoutMs: number;

  constructor(policy: Policy, options: { timeoutMs?: number } = {}) {
    this.policy = policy;
    this.#timeoutMs = options.timeoutMs ?? 2000;
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
    return new Promise((resolve) => {
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
        const body = `old ${old}\n${proof.map((h) => `${base64Encode(h)}\n`).join("")}\n${note}`;
        const res = await fetch(`${m.url.replace(/\/$/, "")}/add-checkpoint`, {
          method: "POST",
          body,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        const text = await res.text();
        if (
          res.status === 409 &&
          (res.headers.get("Content-Type") ?? "").startsWith("text/x.tlog.size")
        ) {
          const theirs = parseDecimal(text.trim(), "witness size");
          if (theirs > size) {
            m.lastError = `the witness has size ${theirs}, beyond this checkpoint's ${size}`;
            m.known = theirs;
            return undefined;
          }
          m.known = theirs;
          continue;
        }
        if (res.status !== 200) {
          m.lastError = `HTTP ${res.status}: ${text.trim().slice(0, 200)}`;
          return undefined;
        }
        const valid = this.#verifiedLines(m, note, text);
        if (valid === undefined) {
          m.lastError = "the answer holds no valid cosignature from this witness's key";
          return undefined;
        }
        m.known = size;
        m.cosigned = size;
        m.lastError = null;
        m.lastSuccess = Date.now();
        return valid;
      }
      m.lastError = "the witness's size kept changing";
      return undefined;
    } catch (e) {
      m.lastError =
        (e as Error).name === "TimeoutError"
          ? `no answer within ${this.#timeoutMs} ms`
          : (e as Error).message;
      return undefined;
    }
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
