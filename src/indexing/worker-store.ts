/**
 * @module
 * The index's store in a worker thread (index-store.ts): the thread owns the index's LevelDB
 * (DATA/index) and does all of the index's work there — parsing events, appending to lists,
 * rewriting the map — so the server's event loop only reads the log's entries and hands them
 * over. Calls are answered in order. If the thread dies, pending calls fail (STORAGE_FAILURE)
 * and the next call starts a new thread on the same database: the engine reloads the stored
 * state after any failure, so nothing the thread had not written counts.
 */
import { Worker } from "node:worker_threads";
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
 * A revision's entries as one message: the payloads back to back, where each ends, and the
 * first entry's index. One buffer moved to the thread rather than one cloned per entry (a
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
    // The thread numbers them from the first: a gap here would be renumbered silently there.
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
 * The worker: the built store-worker.js beside this file; from the TypeScript sources (tests),
 * a small script that registers tsx in the thread first and then imports store-worker.ts.
 */
function newWorker(workerData: unknown): Worker {
  // A larger young generation: a revision makes many short-lived objects (decoded nodes, hashes),
  // and with V8's default the thread spends a quarter of its time collecting them.
  const resourceLimits = { maxYoungGenerationSizeMb: 96 };
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./store-worker.js", import.meta.url), {
      workerData,
      resourceLimits,
    });
  }
  const source = new URL("./store-worker.ts", import.meta.url).href;
  const script = `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(script, { eval: true, workerData, resourceLimits });
}

export class WorkerIndexStore implements IndexStore {
  readonly #path: string;
  readonly #keyFunction: KeyFunctionName;
  #worker: Promise<Worker> | undefined;
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

  /** Starts the thread and opens the database at `path` there (rejects if it cannot). */
  static async open(path: string, keyFunction: KeyFunctionName): Promise<WorkerIndexStore> {
    const store = new WorkerIndexStore(path, keyFunction);
    await store.#start();
    return store;
  }

  #start(): Promise<Worker> {
    this.#worker ??= new Promise<Worker>((resolve, reject) => {
      const worker = newWorker({ path: this.#path, keyFunction: this.#keyFunction });
      let ready = false;
      worker.on("message", (m: Reply & { ready?: boolean }) => {
        if (m.ready !== undefined) {
          ready = m.ready;
          if (m.ready) resolve(worker);
          else {
            reject(new VellumError(m.error!.code, `the index store: ${m.error!.message}`));
            void worker.terminate();
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
        this.#worker = undefined;
        const error = new VellumError("STORAGE_FAILURE", `the index's worker thread ${why}`);
        if (!ready) reject(error);
        for (const p of this.#pending.values()) p.reject(error);
        this.#pending.clear();
      };
      worker.on("error", (e) => died(`failed: ${e.message}`));
      worker.on("exit", (code) => {
        if (!this.#closing) {
          died(`stopped (exit ${code})`);
          return;
        }
        // Closing: whatever was pending (the close itself) is over.
        for (const p of this.#pending.values()) p.resolve(undefined);
        this.#pending.clear();
      });
    });
    return this.#worker;
  }

  async #call<T>(method: string, args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#closed) throw new VellumError("UNAVAILABLE", "the index store is closed");
    const worker = await this.#start();
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, method, args }, transfer);
    });
  }

  load(): Promise<IndexStoreState> {
    return this.#call("load", []);
  }

  apply(entries: readonly IndexedEntry[]): Promise<Uint8Array> {
    const packed = packEntries(entries);
    return this.#call(
      "apply",
      [packed],
      [packed.bytes.buffer as ArrayBuffer, packed.ends.buffer as ArrayBuffer],
    );
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
    if (this.#closed || this.#worker === undefined) {
      this.#closed = true;
      return;
    }
    const worker = await this.#worker.catch(() => undefined);
    if (worker === undefined) return;
    this.#closing = true;
    // Listen for the exit before asking for it: the thread may end before the reply is read,
    // and a process waiting on nothing else would then simply stop (exit 0, mid-shutdown).
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    await this.#call("close", []);
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      exited,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => void worker.terminate().then(() => resolve()), 5000);
      }),
    ]);
    clearTimeout(timer);
  }
}
