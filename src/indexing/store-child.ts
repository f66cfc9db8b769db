/**
 * @module
 * The child process behind ChildIndexStore (child-store.ts): owns the index's LevelDB and a
 * LocalIndexStore over it, and answers one call at a time over the IPC channel
 * ({id, method, args} → {id, value} or {id, error: {code, message}}). "close" closes the
 * database and ends the process; so does the channel closing (the server ended, however it
 * ended), so an index process never outlives its server.
 *
 *   node store-child.js <index directory> <key function name>
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";
import { VellumError } from "../core/errors.js";
import { installNodeCrypto } from "../platform/node-crypto.js";
import { type LevelDatabaseOptions, openLevelDatabase } from "../storage/level.js";
import type { Database } from "../storage/types.js";
import { INDEX_PROCESS_NICE, type PackedEntries, unpackEntries } from "./child-store.js";
import { KEY_FUNCTIONS, type KeyFunctionName } from "./key-functions.js";
import { INDEX_DATABASE_OPTIONS, LocalIndexStore } from "./local-store.js";

interface Call {
  readonly id: number;
  readonly method: "load" | "apply" | "counts" | "run" | "prove" | "close";
  readonly args: unknown[];
}

/** How long a start waits for the database's lock (a server killed a moment ago: its index
 * process is closing the database as it notices). */
const LOCK_WAIT_MS = 10_000;

const [path, keyFunction] = process.argv.slice(2) as [string, KeyFunctionName];
const send = (message: unknown) => process.send!(message);

/**
 * Every thread of this process at INDEX_PROCESS_NICE: node's own (V8's garbage-collection and
 * compiler helpers) exist before this runs, and setpriority(2) on Linux sets one thread, so each
 * is set; threads started later (libuv's pool, LevelDB's compaction thread) take the value of the
 * thread that starts them. Elsewhere, the process as a whole.
 */
function lowerPriority(): void {
  let tids: string[] = [];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    // not Linux
  }
  try {
    if (tids.length === 0) setPriority(0, INDEX_PROCESS_NICE);
    for (const tid of tids) setPriority(Number(tid), INDEX_PROCESS_NICE);
  } catch {
    // not allowed: the process runs at its parent's priority
  }
}

const errorOf = (e: unknown) => ({
  code: e instanceof VellumError ? e.code : "INTERNAL",
  message: e instanceof Error ? e.message : String(e),
});

async function open(options: LevelDatabaseOptions): Promise<Database> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      return await openLevelDatabase(path, options);
    } catch (e) {
      if (!(e instanceof VellumError && e.code === "LOCKED") || Date.now() > deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

try {
  // The process's name as `ps`, `top` and /proc show it (Linux; elsewhere it keeps its own).
  writeFileSync("/proc/self/comm", "vellum-index");
} catch {
  // not Linux: nothing to name
}
lowerPriority();
installNodeCrypto();
// The server decides when this process ends (close, or the channel closing): a Ctrl-C or a
// SIGTERM sent to the whole process group must not end it under the server's feet.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});

/**
 * The running kernel's boot id (Linux), or undefined. With it, the store's writes are not
 * synced: it records the boot id with its state and drops itself if the machine restarted
 * before a clean close made them durable (LocalIndexStore). Without it, every write is synced.
 */
function bootId(): string | undefined {
  try {
    const id = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return /^[0-9a-f-]{36}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

let db: Database | undefined;
let store: LocalIndexStore | undefined;
// One call at a time, in order: the store is not safe for concurrent use.
let queue: Promise<void> = Promise.resolve();
let closing: Promise<void> | undefined;
const closeAndExit = () => {
  closing ??= queue
    .then(() => store?.close())
    .then(() => db?.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
  return closing;
};
process.on("disconnect", () => void closeAndExit());

try {
  const boot = bootId();
  db = await open(
    boot === undefined ? INDEX_DATABASE_OPTIONS : { ...INDEX_DATABASE_OPTIONS, sync: false },
  );
  const opened = new LocalIndexStore(db.namespace("index"), KEY_FUNCTIONS[keyFunction], {
    ...(boot === undefined ? {} : { bootId: boot }),
  });
  store = opened;
  process.on("message", (call: Call) => {
    queue = queue.then(async () => {
      try {
        if (call.method === "close") {
          await opened.close();
          await db!.close();
          db = undefined;
          process.send!({ id: call.id, value: undefined }, () => process.exit(0));
          return;
        }
        const value =
          call.method === "apply"
            ? await opened.apply(unpackEntries(call.args[0] as PackedEntries))
            : await (opened[call.method] as (...args: unknown[]) => Promise<unknown>).apply(
                opened,
                call.args,
              );
        send({ id: call.id, value });
      } catch (e) {
        send({ id: call.id, error: errorOf(e) });
      }
    });
  });
  send({ ready: true });
} catch (e) {
  send({ ready: false, error: errorOf(e) });
}
