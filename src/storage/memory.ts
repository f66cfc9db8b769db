/**
 * @module
 * In-memory `Database` for tests: the storage contract of ./types.ts, plus a crash model and fault
 * hooks (spec/storage.md, "Drivers").
 *
 * Crash model: there is no page cache, so whatever a write applies is durable at that moment and
 * atomically (all ops or none). `crash()` kills this instance as a process death would: writes
 * that were never applied ("hang", or held by an async fault hook) are gone, later calls reject
 * with UNAVAILABLE. `simulateRestart()` crashes it and returns a fresh instance over exactly the
 * applied data, so a test can restart a log on what was durably written; `snapshot()` and
 * `MemoryDatabase.fromSnapshot()` do the same in two steps.
 *
 * All namespaces share one sorted map, under the same "!name!" key prefixes as the LevelDB driver
 * (./namespace.ts); keys are ordered bytewise unsigned (via binary strings, whose UTF-16 comparison
 * is bytewise for code units 0..255). Keys and values are copied in when `write()` is called and
 * copied out on every read (the map holds only plain Uint8Arrays, whose `slice()` copies), so
 * callers own every buffer.
 *
 * Over 400 lines: the contract plus a crash model and every fault hook the fault tests use, which
 * must see the same internal state.
 */
import { VellumError } from "../core/errors.js";
import { checkKey, checkKeys, checkOps, checkRange } from "./checks.js";
import { InFlight } from "./inflight.js";
import { namespacePrefix, prefixKey } from "./namespace.js";
import type { Database, KeyValueStore, RangeOptions, WriteOp } from "./types.js";

/**
 * What the fault hook makes a `write()` do:
 * - "ok": applied, resolves.
 * - "fail": nothing applied, rejects with STORAGE_FAILURE.
 * - "persist-then-fail": applied (durably), then rejects with STORAGE_FAILURE.
 * - "lose": nothing applied, yet resolves (a lying disk). Later reads do not see it either.
 * - "hang": nothing applied, never settles: the process "dies" inside the write. It is not an
 *   in-flight write for `close()`, which does not wait for it.
 */
export type WriteFault = "ok" | "fail" | "persist-then-fail" | "lose" | "hang";

/** What the read hook makes a read do: "fail" rejects with STORAGE_FAILURE. */
export type ReadFault = "ok" | "fail";

export type ReadKind = "get" | "getMany" | "range";

export interface MemoryFaults {
  /**
   * Consulted on every `write()` that passed its argument checks, before anything is applied, with
   * the namespace name, a copy of the ops and the write's sequence number (1, 2, ... per instance,
   * in call order). May return a promise to hold the write (to test concurrency); the verdict
   * applies when it resolves, and a rejected promise counts as "fail".
   */
  write?(namespace: string, ops: readonly WriteOp[], seq: number): WriteFault | Promise<WriteFault>;
  /** Consulted on every read (get, getMany, range) before it is served. */
  read?(namespace: string, kind: ReadKind): ReadFault;
  /**
   * Consulted on every `recover()` after a failed write: may hold it (a promise) to test what
   * happens while a store is down; a rejection (or throw) fails the recovery, which stays due.
   */
  recover?(): void | Promise<void>;
}

export interface MemoryOptions {
  readonly faults?: MemoryFaults;
}

/** Counters since this instance was created (a restart starts from zero). */
export interface MemoryCounters {
  /** `write()` calls that reached the fault hook; equals the last sequence number. */
  writes: number;
  /** Writes whose ops were applied ("ok" and "persist-then-fail"). */
  writesApplied: number;
  /** Ops in applied writes. */
  opsWritten: number;
  /** Writes that rejected ("fail", "persist-then-fail", a rejected hook). */
  writesFailed: number;
  /** Writes that resolved without being applied ("lose"). */
  writesLost: number;
  /** Writes that will never settle ("hang", or held by the hook across a crash). */
  writesHung: number;
  /** get, getMany and range calls that were served or failed by the read hook. */
  reads: number;
}

/** The durable contents of a MemoryDatabase: full keys (namespace prefix included), ascending. */
export interface MemorySnapshot {
  readonly entries: readonly (readonly [key: Uint8Array, value: Uint8Array])[];
}

interface Entry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * A map from byte-string keys to values, in bytewise order. It owns what it is given. The order
 * is rebuilt lazily, on the first ordered read after writes: inserting into a sorted array on
 * every put made large tests quadratic.
 */
class SortedBytesMap {
  /** Binary strings (one char per byte), ascending when not #dirty. */
  #order: string[] = [];
  #dirty = false;
  readonly #entries = new Map<string, Entry>();

  get size(): number {
    return this.#entries.size;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.#entries.get(binaryString(key))?.value;
  }

  set(key: Uint8Array, value: Uint8Array): void {
    const s = binaryString(key);
    if (!this.#entries.has(s)) {
      this.#order.push(s);
      this.#dirty = true;
    }
    this.#entries.set(s, { key, value });
  }

  delete(key: Uint8Array): void {
    if (this.#entries.delete(binaryString(key))) {
      this.#order = [...this.#entries.keys()];
      this.#dirty = true;
    }
  }

  /** Entries with gte <= key < lt, at most `limit`, ascending unless `reverse`. */
  range(gte: Uint8Array, lt: Uint8Array, limit: number, reverse: boolean): Entry[] {
    this.#sort();
    const lo = this.#lowerBound(binaryString(gte));
    const hi = this.#lowerBound(binaryString(lt));
    const out: Entry[] = [];
    if (reverse) {
      for (let i = hi - 1; i >= lo && out.length < limit; i--) out.push(this.#at(i));
    } else {
      for (let i = lo; i < hi && out.length < limit; i++) out.push(this.#at(i));
    }
    return out;
  }

  *entries(): IterableIterator<Entry> {
    this.#sort();
    for (let i = 0; i < this.#order.length; i++) yield this.#at(i);
  }

  #sort(): void {
    if (!this.#dirty) return;
    // UTF-16 code unit order of one-char-per-byte strings is bytewise unsigned order.
    this.#order.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.#dirty = false;
  }

  #at(i: number): Entry {
    return this.#entries.get(this.#order[i]!)!;
  }

  /** First index whose key is >= s. */
  #lowerBound(s: string): number {
    let lo = 0;
    let hi = this.#order.length;
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (this.#order[mid]! < s) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function binaryString(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/** State shared by a MemoryDatabase and its stores. */
interface Core {
  readonly map: SortedBytesMap;
  readonly counters: MemoryCounters;
  readonly inflight: InFlight;
  faults: MemoryFaults;
  state: "open" | "closing" | "closed" | "crashed";
  /** The failed write that stopped writes (fail-stop), until `recover()`. */
  failure: VellumError | undefined;
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

export class MemoryDatabase implements Database {
  readonly #core: Core;

  constructor(options: MemoryOptions = {}) {
    this.#core = {
      map: new SortedBytesMap(),
      counters: {
        writes: 0,
        writesApplied: 0,
        opsWritten: 0,
        writesFailed: 0,
        writesLost: 0,
        writesHung: 0,
        reads: 0,
      },
      inflight: new InFlight(),
      faults: options.faults ?? {},
      state: "open",
      failure: undefined,
    };
  }

  /** A fresh database holding `snapshot`'s entries (copied). */
  static fromSnapshot(snapshot: MemorySnapshot, options: MemoryOptions = {}): MemoryDatabase {
    const db = new MemoryDatabase(options);
    for (const [key, value] of snapshot.entries)
      db.#core.map.set(new Uint8Array(key), new Uint8Array(value));
    return db;
  }

  /** The fault hooks; assign to change them mid-test. */
  get faults(): MemoryFaults {
    return this.#core.faults;
  }

  set faults(faults: MemoryFaults) {
    this.#core.faults = faults;
  }

  /** Live counters (read-only view). */
  get counters(): Readonly<MemoryCounters> {
    return this.#core.counters;
  }

  /** Number of keys stored, over all namespaces. */
  get size(): number {
    return this.#core.map.size;
  }

  get crashed(): boolean {
    return this.#core.state === "crashed";
  }

  namespace(name: string): KeyValueStore {
    const prefix = namespacePrefix(name);
    assertOpen(this.#core);
    return new MemoryStore(this.#core, name, prefix);
  }

  /** Waits for in-flight writes (not hung ones), then refuses further use. Idempotent. */
  async close(): Promise<void> {
    const core = this.#core;
    if (core.state !== "open") {
      if (core.state === "closing") await core.inflight.idle();
      return;
    }
    core.state = "closing";
    await core.inflight.idle();
    if (core.state === "closing") core.state = "closed";
  }

  /** A copy of everything applied so far. Works on a closed or crashed instance too. */
  snapshot(): MemorySnapshot {
    const entries: [Uint8Array, Uint8Array][] = [];
    for (const e of this.#core.map.entries())
      entries.push([new Uint8Array(e.key), new Uint8Array(e.value)]);
    return { entries };
  }

  /**
   * Kills this instance as a process death would: writes not yet applied (hung, or held by an
   * async fault hook) never settle and never apply; every later call rejects with UNAVAILABLE.
   */
  crash(): void {
    this.#core.state = "crashed";
  }

  /** `crash()`, then a fresh instance over exactly the data this one applied. */
  simulateRestart(options: MemoryOptions = {}): MemoryDatabase {
    this.crash();
    return MemoryDatabase.fromSnapshot(this.snapshot(), options);
  }
}

function assertOpen(core: Core): void {
  if (core.state === "crashed") {
    throw new VellumError("UNAVAILABLE", "memory database crashed (simulated process death)");
  }
  if (core.state !== "open") throw new VellumError("UNAVAILABLE", "memory database is closed");
}

class MemoryStore implements KeyValueStore {
  readonly #core: Core;
  readonly #name: string;
  readonly #prefix: Uint8Array;
  readonly #inflight = new InFlight();
  #closed = false;

  constructor(core: Core, name: string, prefix: Uint8Array) {
    this.#core = core;
    this.#name = name;
    this.#prefix = prefix;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#beginRead("get");
    return this.#core.map.get(prefixKey(this.#prefix, checkKey(key)))?.slice();
  }

  async getMany(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.#beginRead("getMany");
    const map = this.#core.map;
    return checkKeys(keys).map((k) => map.get(prefixKey(this.#prefix, k))?.slice());
  }

  async range(options: RangeOptions): Promise<[Uint8Array, Uint8Array][]> {
    this.#beginRead("range");
    const { gte, lt, limit, reverse } = checkRange(options);
    const p = this.#prefix;
    const found = this.#core.map.range(prefixKey(p, gte), prefixKey(p, lt), limit, reverse);
    return found.map((e) => [e.key.slice(p.length), e.value.slice()]);
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    this.#assertUsable();
    const core = this.#core;
    if (core.failure !== undefined) {
      throw new VellumError(
        "STORAGE_FAILURE",
        `writes are stopped after a failed write (${core.failure.message}); recover() first`,
        { cause: core.failure },
      );
    }
    // Copy now: the caller may reuse its buffers as soon as write() returns.
    const copied: WriteOp[] = checkOps(ops).map((op) =>
      op.type === "put"
        ? { type: "put", key: prefixKey(this.#prefix, op.key), value: new Uint8Array(op.value) }
        : { type: "del", key: prefixKey(this.#prefix, op.key) },
    );
    const seq = ++core.counters.writes;
    core.inflight.enter();
    this.#inflight.enter();
    let hung = false;
    try {
      hung = await this.#writeWithHook(copied, seq);
    } catch (e) {
      // Fail-stop, as the LevelDB driver (a crash inside a hung write is not a failed write).
      if (e instanceof VellumError && core.state !== "crashed") core.failure ??= e;
      throw e;
    } finally {
      // A hung write returns a never-settling promise; leaving here means close() won't wait.
      this.#inflight.leave();
      core.inflight.leave();
    }
    if (hung) return this.#hang();
  }

  /** Makes writes possible again after a failed one (nothing to reopen in memory). */
  async recover(): Promise<void> {
    this.#assertUsable();
    const core = this.#core;
    try {
      await core.faults.recover?.();
    } catch (cause) {
      throw new VellumError("STORAGE_FAILURE", "recovery failed (fault hook)", { cause });
    }
    core.failure = undefined;
  }

  /** Applies (or not) as the fault hook says; true when the write hangs forever. */
  async #writeWithHook(copied: WriteOp[], seq: number): Promise<boolean> {
    const core = this.#core;
    const hook = core.faults.write;
    let verdict: WriteFault = "ok";
    if (hook !== undefined) {
      // The hook sees the namespace's own keys, not the prefixed ones.
      const seen: WriteOp[] = copied.map((op) =>
        op.type === "put"
          ? { type: "put", key: op.key.slice(this.#prefix.length), value: op.value.slice() }
          : { type: "del", key: op.key.slice(this.#prefix.length) },
      );
      const hookFailed = (cause: unknown) => {
        core.counters.writesFailed++;
        return new VellumError("STORAGE_FAILURE", `write ${seq} failed (fault hook threw)`, {
          cause,
        });
      };
      let answer: WriteFault | Promise<WriteFault>;
      try {
        answer = hook(this.#name, seen, seq);
      } catch (cause) {
        throw hookFailed(cause);
      }
      if (typeof answer === "string") {
        verdict = answer;
      } else {
        try {
          verdict = await answer;
        } catch (cause) {
          if (core.state === "crashed") return true;
          throw hookFailed(cause);
        }
        // The process "died" while the hook held this write: it never lands, never settles.
        if (core.state === "crashed") return true;
      }
    }
    switch (verdict) {
      case "ok":
        this.#apply(copied);
        return false;
      case "persist-then-fail":
        this.#apply(copied);
        core.counters.writesFailed++;
        throw new VellumError("STORAGE_FAILURE", `write ${seq} failed after it was persisted`);
      case "fail":
        core.counters.writesFailed++;
        throw new VellumError("STORAGE_FAILURE", `write ${seq} failed; nothing was written`);
      case "lose":
        core.counters.writesLost++;
        return false;
      case "hang":
        return true;
      default:
        throw new VellumError("INTERNAL", `unknown write fault ${JSON.stringify(verdict)}`);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#core.state !== "crashed") await this.#inflight.idle();
  }

  #hang(): Promise<void> {
    this.#core.counters.writesHung++;
    return never();
  }

  #apply(ops: readonly WriteOp[]): void {
    const { map, counters } = this.#core;
    for (const op of ops) {
      if (op.type === "put") map.set(op.key, op.value);
      else map.delete(op.key);
    }
    counters.writesApplied++;
    counters.opsWritten += ops.length;
  }

  #assertUsable(): void {
    assertOpen(this.#core);
    if (this.#closed) {
      throw new VellumError("UNAVAILABLE", `namespace ${JSON.stringify(this.#name)} is closed`);
    }
  }

  #beginRead(kind: ReadKind): void {
    this.#assertUsable();
    this.#core.counters.reads++;
    const verdict = this.#core.faults.read?.(this.#name, kind) ?? "ok";
    if (verdict === "fail") {
      throw new VellumError("STORAGE_FAILURE", `${kind} on ${this.#name} failed (injected)`);
    }
    if (verdict !== "ok") {
      throw new VellumError("INTERNAL", `unknown read fault ${JSON.stringify(verdict)}`);
    }
  }
}
