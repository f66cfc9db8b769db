/**
 * @module
 * The rollback marker: the last checkpoint the log signed, kept outside its database so that a
 * database restored from an older backup is caught at start (Log.#load refuses a stored tree that
 * does not contain a marker's checkpoint).
 *
 *   DATA/checkpoint          always; restored (or deleted) together with the data directory
 *   MIRROR/checkpoint        with `serve --state-mirror MIRROR`: outside the data directory, so a
 *                            restore of DATA, or a deleted DATA/checkpoint, does not erase it
 *
 * Invariants: every marker path is written with the same note, atomically and durably
 * (src/platform/durable-file.ts), at most once a second and asynchronously (a synchronous fsync
 * here stalled every request while it ran), so a marker lags the log by up to a second. A write
 * that fails is reported (`onFailure`, each attempt) and retried with back-off until every path
 * holds the newest checkpoint again (`onRecovered`): while it fails, the markers fall behind, and
 * the caller must stop acknowledging entries, since a rollback to them would go unnoticed.
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { parseCheckpoint } from "../core/checkpoint.js";
import { VellumError } from "../core/errors.js";
import { parseNote } from "../core/note.js";
import { writeFileDurablyAsync } from "../platform/durable-file.js";
import { usageError } from "./exit-codes.js";

export const MARKER_FILE = "checkpoint";

export interface MarkerOptions {
  /** Each failed attempt to bring every marker up to date (the cause, with the path). */
  readonly onFailure?: (error: Error) => void;
  /** Every marker holds the newest checkpoint again after a failure. */
  readonly onRecovered?: () => void;
  /** How long a checkpoint waits for later ones before it is written (default 1000 ms). */
  readonly delayMs?: number;
  /** First pause before retrying a failed write, doubled up to `maxRetryMs` (1 s, 30 s). */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

/** What `readMarkers` found: what the log must check its storage against. */
export interface Markers {
  /** DATA/checkpoint, if present. */
  readonly lastPublished: string | undefined;
  /** The state mirror's checkpoint, if configured and present, named for messages. */
  readonly remembered: readonly { readonly where: string; readonly note: string }[];
  /** Every file the marker writes: DATA/checkpoint, then the mirror's. */
  readonly paths: readonly string[];
  /** Things worth a log line (a mirror being created). */
  readonly notices: readonly string[];
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** The size a marker's note claims (unverified: the log verifies it against its key). */
function claimedSize(note: string): string {
  try {
    return String(parseCheckpoint(parseNote(note).text).size);
  } catch {
    return "(unreadable)";
  }
}

/** The state mirror's absolute path, if it is an existing directory; else a usage error. */
export function checkMirrorDir(mirrorDir: string): string {
  const mirror = resolve(mirrorDir);
  let isDir = false;
  try {
    isDir = statSync(mirror).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (!isDir) {
    // Not created here: a mirror volume that is not mounted must not pass for a first start.
    throw usageError(
      `--state-mirror: ${mirror} is not an existing directory; create it once (mkdir -p ${mirror}), on storage that is not restored with the data directory`,
    );
  }
  return mirror;
}

/**
 * Reads DATA/checkpoint and, with `mirrorDir`, MIRROR/checkpoint. Refuses (STATE_MISMATCH) a
 * mirror that does not exist or lies inside the data directory (it would be restored with it),
 * and a DATA/checkpoint that is missing while the mirror holds one (DATA was replaced, restored
 * from a backup without it, or the file deleted).
 */
export function readMarkers(dataDir: string, mirrorDir?: string): Markers {
  const dataPath = join(dataDir, MARKER_FILE);
  const lastPublished = readIfExists(dataPath);
  if (mirrorDir === undefined) {
    return { lastPublished, remembered: [], paths: [dataPath], notices: [] };
  }
  const mirror = checkMirrorDir(mirrorDir);
  const inside = relative(realpathSync(dataDir), realpathSync(mirror));
  const outside = inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside);
  if (inside === "" || !outside) {
    throw new VellumError(
      "STATE_MISMATCH",
      `the state mirror ${mirror} is inside the data directory ${dataDir}: it would be restored with it; put it elsewhere`,
    );
  }
  const mirrorPath = join(mirror, MARKER_FILE);
  const mirrored = readIfExists(mirrorPath);
  const where = `the state mirror ${mirrorPath}`;
  if (mirrored !== undefined && lastPublished === undefined) {
    throw new VellumError(
      "STATE_MISMATCH",
      `${dataPath} is missing, but ${where} holds a checkpoint of size ${claimedSize(mirrored)}: the data directory was replaced, restored from a backup without it, or the file was deleted. What to do: restore a backup of the data directory that holds at least that size; or, if you know only the file was lost, copy it back (cp ${mirrorPath} ${dataPath}) — the stored tree is checked against it at start`,
    );
  }
  const notices =
    mirrored === undefined && lastPublished !== undefined
      ? [
          `${where} does not exist yet: it is written from now on (first start with --state-mirror; if it existed before, it was lost and protects nothing until rewritten)`,
        ]
      : [];
  return {
    lastPublished,
    remembered: mirrored === undefined ? [] : [{ where, note: mirrored }],
    paths: [dataPath, mirrorPath],
    notices,
  };
}

/** Writes the newest checkpoint note to every marker path (see the module comment). */
export class CheckpointMarker {
  readonly #paths: readonly string[];
  readonly #options: MarkerOptions;
  /** The newest note not yet written everywhere. */
  #pending: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failing = false;
  #retryMs: number;

  constructor(paths: readonly string[], options: MarkerOptions = {}) {
    this.#paths = paths;
    this.#options = options;
    this.#retryMs = options.retryMs ?? 1000;
  }

  /** True from a failed write until every marker holds the newest checkpoint again. */
  get failing(): boolean {
    return this.#failing;
  }

  /** Remembers `note` (a newly signed checkpoint) and writes it within `delayMs`. */
  update(checkpoint: { readonly note: string }): void {
    this.#pending = checkpoint.note;
    if (!this.#failing) this.#timer ??= setTimeout(() => void this.#flush(), this.#delayMs);
  }

  /** Writes what is pending now (at shutdown); resolves when done, even if it failed. */
  flush(): Promise<void> {
    return this.#flush();
  }

  get #delayMs(): number {
    return this.#options.delayMs ?? 1000;
  }

  #flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const note = this.#pending;
    if (note === undefined) return this.#writing;
    this.#pending = undefined;
    this.#writing = this.#writing.then(async () => {
      try {
        // Every path gets the same note; each write is atomic (rename), so a marker holds an
        // old checkpoint or the new one, never a torn file.
        await Promise.all(this.#paths.map((p) => this.#write(p, note)));
      } catch (e) {
        this.#pending ??= note; // a newer one may have arrived meanwhile: that one is written
        this.#failing = true;
        this.#options.onFailure?.(e as Error);
        this.#timer = setTimeout(() => void this.#flush(), this.#retryMs);
        this.#timer.unref();
        this.#retryMs = Math.min(this.#retryMs * 2, this.#options.maxRetryMs ?? 30_000);
        return;
      }
      if (this.#failing) {
        this.#failing = false;
        this.#retryMs = this.#options.retryMs ?? 1000;
        this.#options.onRecovered?.();
      }
      // Checkpoints that arrived while this write ran (or while failing) are written next.
      if (this.#pending !== undefined) {
        this.#timer ??= setTimeout(() => void this.#flush(), this.#delayMs);
      }
    });
    return this.#writing;
  }

  async #write(path: string, note: string): Promise<void> {
    try {
      await writeFileDurablyAsync(path, note);
    } catch (e) {
      throw new Error(`could not update ${path}: ${(e as Error).message}`, { cause: e });
    }
  }
}
