/**
 * The index store in a child process (src/indexing/child-store.ts) against the same work done
 * in this thread (LocalIndexStore): the same map roots after each batch, the same counts, runs
 * and map proofs; the state survives closing and reopening; errors keep their codes.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { indexKeysOfPayload } from "../../src/core/event-keys.js";
import { ChildIndexStore } from "../../src/indexing/child-store.js";
import { LocalIndexStore, STATE_KEY } from "../../src/indexing/local-store.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { apiActivity } from "../audit/events.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** /proc/<pid>/stat's fields after the command name: state, ppid, ..., nice at [16]. */
const statFields = (path: string) => {
  const stat = readFileSync(path, "latin1");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
};

/** The processes whose parent is `pid` (Linux). */
const childrenOf = (pid: number) =>
  readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return Number(statFields(`/proc/${p}/stat`)[1]) === pid;
      } catch {
        return false; // a process that ended while listed
      }
    });

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const payload = (i: number) =>
  enc(
    apiActivity({
      actor: { user: { uid: `u${i % 5}` } },
      resources: [{ uid: `r${i}` }, { uid: `r${i % 7}` }],
    }),
  );

describe("ChildIndexStore", () => {
  it("does in its process exactly what LocalIndexStore does here", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
    dirs.push(dir);
    const local = new LocalIndexStore(new MemoryDatabase().namespace("index"), indexKeysOfPayload);
    let store = await ChildIndexStore.open(join(dir, "index"), "event-keys");
    expect(await store.load()).toEqual(await local.load());
    let next = 0;
    for (const n of [1, 10, 100, 37]) {
      const entries = Array.from({ length: n }, () => ({ index: next, payload: payload(next++) }));
      expect(Buffer.from(await store.apply(entries))).toEqual(
        Buffer.from(await local.apply(entries)),
      );
    }
    await store.close();
    store = await ChildIndexStore.open(join(dir, "index"), "event-keys");
    const state = await store.load();
    expect(state.size).toBe(next);
    expect(Buffer.from(state.mapRoot)).toEqual(Buffer.from((await local.load()).mapRoot));
    const keys = [
      { kind: "actor", value: "u3" },
      { kind: "resource", value: "r4" },
      { kind: "actor", value: "nobody" },
    ] as const;
    expect(await store.counts(keys)).toEqual(await local.counts(keys));
    const q = { key: keys[0], count: 20, from: 10, to: 120, order: "desc", limit: 5 } as const;
    expect(await store.run(q)).toEqual(await local.run(q));
    expect(await store.prove(keys[2])).toEqual(await local.prove(keys[2]));
    // An entry out of order is refused there as here, with its code.
    await expect(store.apply([{ index: 0, payload: payload(0) }])).rejects.toMatchObject({
      code: "INTERNAL",
    });
    await store.close();
    await expect(store.load()).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  it.runIf(process.platform === "linux")(
    "runs as a process named 'vellum-index', every thread of it at nice 19, ended by close()",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
      dirs.push(dir);
      const children = () => childrenOf(process.pid);
      const before = new Set(children());
      const mainNice = Number(statFields(`/proc/${process.pid}/stat`)[16]);
      const store = await ChildIndexStore.open(join(dir, "index"), "event-keys");
      await store.apply([{ index: 0, payload: payload(0) }]); // LevelDB's threads started
      const started = children().filter((p) => !before.has(p));
      expect(started).toHaveLength(1);
      const pid = started[0]!;
      expect(readFileSync(`/proc/${pid}/comm`, "latin1").trim()).toBe("vellum-index");
      const tids = readdirSync(`/proc/${pid}/task`);
      expect(tids.length).toBeGreaterThan(1);
      for (const tid of tids) {
        expect(Number(statFields(`/proc/${pid}/task/${tid}/stat`)[16])).toBe(19);
      }
      expect(Number(statFields(`/proc/${process.pid}/stat`)[16])).toBe(mainNice);
      await store.close();
      expect(existsSync(`/proc/${pid}`)).toBe(false);
    },
  );

  it.runIf(process.platform === "linux")(
    "ends when its server is killed, and the next server opens the same store at once",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
      dirs.push(dir);
      const source = `
        import { ChildIndexStore } from ${JSON.stringify(new URL("../../src/indexing/child-store.ts", import.meta.url).href)};
        const store = await ChildIndexStore.open(process.argv[1], "event-keys");
        await store.load();
        console.log("open");
        setInterval(() => {}, 1000);
      `;
      const server = spawn(
        process.execPath,
        [
          "--import",
          import.meta.resolve("tsx"),
          "--input-type=module",
          "-e",
          source,
          join(dir, "index"),
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      await new Promise<void>((resolve, reject) => {
        server.stdout!.on("data", (d: Buffer) => d.toString().includes("open") && resolve());
        server.on("exit", (code) => reject(new Error(`the server ended first (${code})`)));
      });
      const [child] = childrenOf(server.pid!);
      expect(child).toBeDefined();
      server.kill("SIGKILL");
      const deadline = Date.now() + 10_000;
      while (existsSync(`/proc/${child}`) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(existsSync(`/proc/${child}`)).toBe(false);
      const next = await ChildIndexStore.open(join(dir, "index"), "event-keys");
      expect((await next.load()).size).toBe(0);
      await next.close();
    },
    20_000,
  );

  it.runIf(process.platform === "linux")(
    "a killed index process fails the calls pending; the next call starts a new one on the stored state",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
      dirs.push(dir);
      const local = new LocalIndexStore(
        new MemoryDatabase().namespace("index"),
        indexKeysOfPayload,
      );
      const store = await ChildIndexStore.open(join(dir, "index"), "event-keys");
      const first = Array.from({ length: 50 }, (_, i) => ({ index: i, payload: payload(i) }));
      const root = Buffer.from(await store.apply(first));
      expect(root).toEqual(Buffer.from(await local.apply(first)));
      const [child] = childrenOf(process.pid);
      expect(child).toBeDefined();
      // A revision in flight when the process dies: refused, nothing of it counts.
      const next = Array.from({ length: 2000 }, (_, i) => ({
        index: 50 + i,
        payload: payload(50 + i),
      }));
      const pending = store.apply(next);
      process.kill(Number(child), "SIGKILL");
      const outcome = await pending.then(
        () => "applied",
        (e: { code?: string }) => e.code,
      );
      // It either finished before the kill landed or failed as the process died.
      expect(["applied", "STORAGE_FAILURE"]).toContain(outcome);
      // Once the process is gone (reaped: its exit seen), the next call starts a new one over what
      // the store holds. (A call made while the killed process still stood fails, as a call to a
      // dying process does; the engine retries.)
      for (let i = 0; i < 100 && existsSync(`/proc/${child}`); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const state = await store.load();
      if (outcome === "STORAGE_FAILURE") {
        expect(state.size === 50 || state.size === 2050).toBe(true);
      } else {
        expect(state.size).toBe(2050);
      }
      if (state.size === 50) expect(Buffer.from(state.mapRoot)).toEqual(root);
      else expect(Buffer.from(state.mapRoot)).toEqual(Buffer.from(await local.apply(next)));
      await store.close();
    },
    20_000,
  );

  it.runIf(process.platform === "linux")(
    "writes unsynced under this boot's id, durably on close; a store left by another boot is rebuilt",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
      dirs.push(dir);
      const path = join(dir, "index");
      const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      const stateOf = async () => {
        const db = await openLevelDatabase(path);
        try {
          return await db.namespace("index").get(STATE_KEY);
        } finally {
          await db.close();
        }
      };
      const entries = Array.from({ length: 20 }, (_, i) => ({ index: i, payload: payload(i) }));
      let store = await ChildIndexStore.open(path, "event-keys");
      await store.apply(entries);
      // Killed, not closed: the revision's state carries this boot's id.
      const [child] = childrenOf(process.pid);
      process.kill(Number(child), "SIGKILL");
      for (let i = 0; i < 100 && existsSync(`/proc/${child}`); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await store.close();
      const unsynced = (await stateOf())!;
      expect(new TextDecoder().decode(unsynced.subarray(40))).toBe(boot);
      // The same boot: the store is trusted as it is.
      store = await ChildIndexStore.open(path, "event-keys");
      expect((await store.load()).size).toBe(20);
      await store.close();
      // Closed cleanly: the state was written durably, without a boot id.
      expect((await stateOf())!.length).toBe(40);
      // As if the machine had restarted under unsynced writes: another boot's id in the state.
      const db = await openLevelDatabase(path);
      const other = new TextEncoder().encode("00000000-0000-0000-0000-000000000000");
      const left = new Uint8Array(40 + other.length);
      left.set(unsynced.subarray(0, 40));
      left.set(other, 40);
      await db.namespace("index").write([{ type: "put", key: STATE_KEY, value: left }]);
      await db.close();
      store = await ChildIndexStore.open(path, "event-keys");
      const state = await store.load();
      expect(state.size).toBe(0);
      expect(state.dropped).toMatch(/machine restarted/);
      await store.close();
    },
    20_000,
  );

  it("waits for the database's lock when another holder is closing it, then opens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
    dirs.push(dir);
    const holder = await openLevelDatabase(join(dir, "index"));
    const opening = ChildIndexStore.open(join(dir, "index"), "event-keys");
    await new Promise((r) => setTimeout(r, 700));
    await holder.close();
    const store = await opening;
    expect((await store.load()).size).toBe(0);
    await store.close();
  });
});
