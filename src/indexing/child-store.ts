/**
 * @module
 * The index's store in a child process (index-store.ts): the process owns the index's LevelDB
 * (DATA/index) and does all of the index's work there — parsing events, appending to lists,
 * rewriting the map — so the server's event loop only reads the log's entries and hands them
 * over. Calls are answered in order. If the process dies, pending calls fail (STORAGE_FAILURE)
 * and the next call starts a new one on the same database: the engine reloads the stored state
 * after any failure, so nothing the process had not written counts.
 *
 * Why a process and not a worker thread: the index is derived and may lag, the log's
 * submissions may not, so the index runs at the lowest priority (INDEX_PROCESS_NICE). A thread's
 * priority reaches only that thread; about half of the index's CPU is spent on the process's
 * shared threads (LevelDB's compaction of what it writes, V8's garbage-collection helpers),
 * which in a process of its own are the index's alone and yield with it.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type ErrorCode, VellumError } from "../core/errors.js";
import type { IndexKey } from "../core/event-keys.js";
import type { SmtProof } from "../core/smt.js";
import type {
  IndexedEntry,
  IndexStore,
  IndexStoreState,
  ListRun,
  RunQuery,
} from "./index-store.js";
import type { KeyFunctionName } from "./key-functions.js";

/**
 * The index process's nice value: 19, the lowest priority (Linux and macOS; a nice-19 thread gets
 * about 1.5 % of a core against a normal one when they contend, and any core nothing else wants).
 * The index is derived and may lag; the log's submissions may not. Measured in turns on two
 * busy cores (`npm run bench:index -- --only lag --rounds 3`, twice each, with a temporary
 * switch for the value): the log's rate with the index over its rate without, median 0.90 at
 * nice 19 against 0.83 at nice 10, the index's lag p99 3.6–3.9 s against 3.6–3.7 s. A machine
 * whose cores the log itself keeps busy leaves the index behind; `vellum_index_lag_entries`
 * says by how much, and answers say which tree size they cover.
 */
export const INDEX_PROCESS_NICE = 19;

/**
 * A revision's entries as one message: the payloads back to back, where each ends, and the
 * first entry's index. One buffer sent to the index's process rather than one per entry (a
 * revision holds thousands, and each would be an allocation of its own on both sides).
 */
export interface PackedEntries {
  readonly first: number;
  readonly bytes: Uint8Array;
  readonly ends: Uint32Array;
}

export function packEntries(entries: readonly IndexedEntry[]): PackedEntries {
  let total = 0;
  for (const e of entries) total += e.payload.length;
  const bytes = new Uint8Array(total);
  const ends = new Uint32Array(entries.length);
  const first = entries[0]?.index ?? 0;
  let at = 0;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    // The process numbers them from the first: a gap here would be renumbered silently there.
    if (e.index !== first + k) {
      throw new VellumError("INTERNAL", `the index takes consecutive entries, not ${e.index} here`);
    }
    bytes.set(e.payload, at);
    at += e.payload.length;
    ends[k] = at;
  }
  return { first, bytes, ends };
}

/** The entries of a PackedEntries, their payloads views of its buffer. */
export function unpackEntries(packed: PackedEntries): IndexedEntry[] {
  const out: IndexedEntry[] = new Array(packed.ends.length);
  let start = 0;
  for (let k = 0; k < packed.ends.length; k++) {
    const end = packed.ends[k]!;
    out[k] = { index: packed.first + k, payload: packed.bytes.subarray(start, end) };
    start = end;
  }
  return out;
}

type Reply = { id: number; value?: unknown; error?: { code: ErrorCode; message: string } };

/**
 * The process: node running the built store-child.js beside this file; from the TypeScript
 * sources (tests), store-child.ts with tsx registered. Its young generation is 32 MiB a half:
 * a revision makes many short-lived objects (decoded nodes, hashes), and with V8's default
 * the index spent a quarter of its time collecting them.
 */
function newChild(path: string, keyFunction: KeyFunctionName): ChildProcess {
  const fromSources = import.meta.url.endsWith(".ts");
  const script = fileURLToPath(
    new URL(fromSources ? "./store-child.ts" : "./store-child.js", import.meta.url),
  );
  return fork(script, [path, keyFunction], {
    execArgv: [
      ...(fromSources ? ["--import", import.meta.resolve("tsx")] : []),
      "--max-semi-space-size=32",
    ],
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

export class ChildIndexStore implements IndexStore {
  readonly #path: string;
  readonly #keyFunction: KeyFunctionName;
  #child: Promise<ChildProcess> | undefined;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  #next = 0;
  #closed = false;
  #closing = false;

  private constructor(path: string, keyFunction: KeyFunctionName) {
    this.#path = path;
    this.#keyFunction = keyFunction;
  }

  /** Starts the process and opens the database at `path` there (rejects if it cannot). */
  static async open(path: string, keyFunction: KeyFunctionName): Promise<ChildIndexStore> {
    const store = new ChildIndexStore(path, keyFunction);
    await store.#start();
    return store;
  }

  #start(): Promise<ChildProcess> {
    this.#child ??= new Promise<ChildProcess>((resolve, reject) => {
      const child = newChild(this.#path, this.#keyFunction);
      let ready = false;
      child.on("message", (m: Reply & { ready?: boolean }) => {
        if (m.ready !== undefined) {
          ready = m.ready;
          if (m.ready) resolve(child);
          else {
            reject(new VellumError(m.error!.code, `the index store: ${m.error!.message}`));
            child.kill("SIGKILL");
          }
          return;
        }
        const p = this.#pending.get(m.id);
        if (p === undefined) return;
        this.#pending.delete(m.id);
        if (m.error === undefined) p.resolve(m.value);
        else p.reject(new VellumError(m.error.code, m.error.message));
      });
      const died = (why: string) => {
        this.#child = undefined;
        const error = new VellumError("STORAGE_FAILURE", `the index's process ${why}`);
        if (!ready) reject(error);
        for (const p of this.#pending.values()) p.reject(error);
        this.#pending.clear();
      };
      child.on("error", (e) => died(`failed: ${e.message}`));
      child.on("exit", (code, signal) => {
        if (!this.#closing) {
          died(`stopped (${signal === null ? `exit ${code}` : signal})`);
          return;
        }
        // Closing: whatever was pending (the close itself) is over.
        for (const p of this.#pending.values()) p.resolve(undefined);
        this.#pending.clear();
      });
    });
    return this.#child;
  }

  async #call<T>(method: string, args: unknown[]): Promise<T> {
    if (this.#closed) throw new VellumError("UNAVAILABLE", "the index store is closed");
    const child = await this.#start();
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, method, args }, (e) => {
        // Not sent (the process is gone): its exit fails every pending call.
        if (e !== null && e !== undefined && this.#pending.delete(id)) {
          reject(new VellumError("STORAGE_FAILURE", `the index's process: ${e.message}`));
        }
      });
    });
  }

  load(): Promise<IndexStoreState> {
    return this.#call("load", []);
  }

  apply(entries: readonly IndexedEntry[]): Promise<Uint8Array> {
    return this.#call("apply", [packEntries(entries)]);
  }

  counts(keys: readonly IndexKey[]): Promise<number[]> {
    return this.#call("counts", [keys]);
  }

  run(query: RunQuery): Promise<ListRun> {
    return this.#call("run", [query]);
  }

  prove(key: IndexKey): Promise<SmtProof> {
    return this.#call("prove", [key]);
  }

  async close(): Promise<void> {
    if (this.#closed || this.#child === undefined) {
      this.#closed = true;
      return;
    }
    const child = await this.#child.catch(() => undefined);
    if (child === undefined) return;
    this.#closing = true;
    // Listen for the exit before asking for it: the process may end before the reply is read,
    // and a process waiting on nothing else would then simply stop (exit 0, mid-shutdown).
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    await this.#call("close", []).catch(() => undefined);
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      exited,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve();
        }, 5000);
      }),
    ]);
    clearTimeout(timer);
  }
}
