/**
 * @module
 * The worker thread behind WorkerIndexStore (worker-store.ts): owns the index's LevelDB and a
 * LocalIndexStore over it, and answers one call at a time ({id, method, args} → {id, value} or
 * {id, error: {code, message}}). "close" closes the database and ends the thread.
 */
import { readlinkSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { VellumError } from "../core/errors.js";
import { installNodeCrypto } from "../platform/node-crypto.js";
import { openLevelDatabase } from "../storage/level.js";
import { KEY_FUNCTIONS, type KeyFunctionName } from "./key-functions.js";
import { INDEX_DATABASE_OPTIONS, LocalIndexStore } from "./local-store.js";
import { type PackedEntries, unpackEntries } from "./worker-store.js";

interface Call {
  readonly id: number;
  readonly method: "load" | "apply" | "counts" | "run" | "prove" | "close";
  readonly args: unknown[];
}

/**
 * The index's thread yields the CPU to the log's own work (nice 10: about a tenth of a
 * normal thread's share when they contend). The index is derived and may lag; the log's
 * submissions come first. On two busy cores it cost the log less of its rate with the index
 * (`npm run bench:index -- --only lag --rounds 3`, six rounds each, in turns: ratio median 0.86
 * at nice 10 against 0.80 at 0, with a temporary switch for the value) and left the lag as it
 * was (p99 3.4–3.6 s against 3.3–3.6 s):
 * the index still gets the CPU the log leaves, which at the log's full rate is enough.
 */
const INDEX_THREAD_NICE = 10;

const port = parentPort!;
const { path, keyFunction } = workerData as { path: string; keyFunction: KeyFunctionName };
installNodeCrypto();
try {
  // The thread's name as `top -H` and /proc show it (Linux; elsewhere it keeps its own).
  writeFileSync("/proc/thread-self/comm", "vellum-index");
} catch {
  // not Linux: nothing to name
}
try {
  // Linux: /proc/thread-self is "<pid>/task/<tid>", and a thread's id given to setpriority(2)
  // sets that thread's nice value alone. Elsewhere the thread keeps the process's priority.
  const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
  if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, INDEX_THREAD_NICE);
} catch {
  // not Linux, or not allowed: the thread runs at the process's priority
}

const errorOf = (e: unknown) => ({
  code: e instanceof VellumError ? e.code : "INTERNAL",
  message: e instanceof Error ? e.message : String(e),
});

try {
  const db = await openLevelDatabase(path, INDEX_DATABASE_OPTIONS);
  const store = new LocalIndexStore(db.namespace("index"), KEY_FUNCTIONS[keyFunction]);
  // One call at a time, in order: the store is not safe for concurrent use.
  let queue: Promise<void> = Promise.resolve();
  port.on("message", (call: Call) => {
    queue = queue.then(async () => {
      try {
        if (call.method === "close") {
          await db.close();
          port.postMessage({ id: call.id, value: undefined });
          port.close();
          return;
        }
        const value =
          call.method === "apply"
            ? await store.apply(unpackEntries(call.args[0] as PackedEntries))
            : await (store[call.method] as (...args: unknown[]) => Promise<unknown>).apply(
                store,
                call.args,
              );
        port.postMessage({ id: call.id, value });
      } catch (e) {
        port.postMessage({ id: call.id, error: errorOf(e) });
      }
    });
  });
  port.postMessage({ ready: true });
} catch (e) {
  port.postMessage({ ready: false, error: errorOf(e) });
}
