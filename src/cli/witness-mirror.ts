/**
 * @module
 * `vellum witness --state-mirror DIR`: the witness's rollback marker. A witness restored from an
 * older backup has forgotten what it cosigned and could cosign a fork of a log it vouched for;
 * its data directory cannot protect itself. So, outside it, DIR keeps one file per log,
 * `<hex SHA-256 of the origin>.checkpoint`, holding the last checkpoint the witness cosigned
 * (written like the log's marker: atomically, durably, at most once a second per log, ./marker.ts).
 *
 * At start, every mirrored log's stored state must be at least the mirrored size, with the same
 * root at that size; otherwise the witness refuses to start (STATE_MISMATCH). While a mirror
 * file cannot be written, the witness cosigns nothing (503): a restore would go unnoticed.
 * A mirror file is the witness's own record, so its signatures are not re-checked: a damaged
 * one can only make the witness refuse to start, never cosign more.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { bytesEqual, hexEncode } from "../core/bytes.js";
import { parseCheckpoint } from "../core/checkpoint.js";
import { VellumError } from "../core/errors.js";
import { parseNote } from "../core/note.js";
import { describeStorageFailure, storageFailureClass } from "../storage/failure.js";
import type { StorageFailureInfo } from "../witness/fail-stop.js";
import type { CosignedMirror, WitnessState } from "../witness/witness.js";
import { CheckpointMarker, checkMirrorOutside } from "./marker.js";

interface Mirrored {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly file: string;
}

const fileOf = (origin: string) =>
  `${createHash("sha256").update(origin, "utf8").digest("hex")}.checkpoint`;

export class WitnessStateMirror implements CosignedMirror {
  readonly dir: string;
  readonly #markers = new Map<string, CheckpointMarker>();
  readonly #failing = new Map<string, StorageFailureInfo>();
  readonly #log: (line: string) => void;

  private constructor(dir: string, log: (line: string) => void) {
    this.dir = dir;
    this.#log = log;
  }

  /** Checks DIR (an existing directory outside `dataDir`) and reads what it holds. */
  static open(
    mirrorDir: string,
    dataDir: string,
    log: (line: string) => void,
  ): { mirror: WitnessStateMirror; mirrored: Mirrored[] } {
    const dir = checkMirrorOutside(mirrorDir, dataDir);
    const mirrored: Mirrored[] = [];
    for (const name of readdirSync(dir)
      .filter((n) => n.endsWith(".checkpoint"))
      .sort()) {
      const file = join(dir, name);
      try {
        const cp = parseCheckpoint(parseNote(readFileSync(file, "utf8")).text);
        if (fileOf(cp.origin) !== name) throw new Error("it is not named for its log's origin");
        mirrored.push({ origin: cp.origin, size: cp.size, rootHash: cp.rootHash, file });
      } catch (e) {
        throw new VellumError(
          "STATE_MISMATCH",
          `the state mirror file ${file} is not a cosigned checkpoint (${(e as Error).message}); the witness cannot tell what it cosigned: restore the file or look at it before starting`,
        );
      }
    }
    return { mirror: new WitnessStateMirror(dir, log), mirrored };
  }

  /**
   * Refuses (STATE_MISMATCH) a store that holds less for some log than the mirror says was
   * cosigned, or another root at the mirrored size: the data directory was restored or replaced.
   */
  static async check(
    mirrored: readonly Mirrored[],
    stored: (origin: string) => Promise<WitnessState | undefined>,
  ): Promise<void> {
    for (const m of mirrored) {
      const s = await stored(m.origin);
      const behind = s === undefined || s.size < m.size;
      const forked = s !== undefined && s.size === m.size && !bytesEqual(s.rootHash, m.rootHash);
      if (behind || forked) {
        throw new VellumError(
          "STATE_MISMATCH",
          `the witness's storage is behind its state mirror for "${m.origin}": the mirror (${m.file}) says it cosigned size ${m.size}${forked ? ` with root ${hexEncode(m.rootHash).slice(0, 16)}…, storage holds another root at that size` : `, storage holds ${s === undefined ? "nothing" : `size ${s.size}`}`}. The data directory was restored from an older backup or replaced; cosigning now could vouch for a fork. Restore a newer backup holding at least that size, or start a new witness (new --data and --name) and tell the logs' operators.`,
        );
      }
    }
  }

  get failure(): StorageFailureInfo | undefined {
    for (const f of this.#failing.values()) return f;
    return undefined;
  }

  update(state: WitnessState): void {
    let marker = this.#markers.get(state.origin);
    if (marker === undefined) {
      const origin = state.origin;
      marker = new CheckpointMarker([join(this.dir, fileOf(origin))], {
        // Cosigning waits for it: retried often.
        retryMs: 250,
        maxRetryMs: 2000,
        onFailure: (e) => {
          const cause = (e as Error & { cause?: unknown }).cause ?? e;
          this.#failing.set(origin, {
            class: storageFailureClass(cause),
            description: describeStorageFailure(cause),
            message: e.message,
            since: this.#failing.get(origin)?.since ?? Date.now(),
          });
          this.#log(
            `${e.message}; the state mirror is behind, so nothing is cosigned until it is written (retrying)`,
          );
        },
        onRecovered: () => {
          this.#failing.delete(origin);
          this.#log(`the state mirror for "${origin}" is up to date again`);
        },
      });
      this.#markers.set(origin, marker);
    }
    marker.update(state);
  }

  /** Writes what is pending (at shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#markers.values()].map((m) => m.flush()));
  }
}
