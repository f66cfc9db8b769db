/**
 * The index store in a worker thread (src/indexing/worker-store.ts) against the same work done
 * in this thread (LocalIndexStore): the same map roots after each batch, the same counts, runs
 * and map proofs; the state survives closing and reopening; errors keep their codes.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { indexKeysOfPayload } from "../../src/core/event-keys.js";
import { LocalIndexStore } from "../../src/indexing/local-store.js";
import { WorkerIndexStore } from "../../src/indexing/worker-store.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { apiActivity } from "../audit/events.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const payload = (i: number) =>
  enc(
    apiActivity({
      actor: { user: { uid: `u${i % 5}` } },
      resources: [{ uid: `r${i}` }, { uid: `r${i % 7}` }],
    }),
  );

describe("WorkerIndexStore", () => {
  it("does in its thread exactly what LocalIndexStore does here", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-worker-store-"));
    dirs.push(dir);
    const local = new LocalIndexStore(new MemoryDatabase().namespace("index"), indexKeysOfPayload);
    let worker = await WorkerIndexStore.open(join(dir, "index"), "event-keys");
    expect(await worker.load()).toEqual(await local.load());
    let next = 0;
    for (const n of [1, 10, 100, 37]) {
      const entries = Array.from({ length: n }, () => ({ index: next, payload: payload(next++) }));
      expect(Buffer.from(await worker.apply(entries))).toEqual(
        Buffer.from(await local.apply(entries)),
      );
    }
    await worker.close();
    worker = await WorkerIndexStore.open(join(dir, "index"), "event-keys");
    const state = await worker.load();
    expect(state.size).toBe(next);
    expect(Buffer.from(state.mapRoot)).toEqual(Buffer.from((await local.load()).mapRoot));
    const keys = [
      { kind: "actor", value: "u3" },
      { kind: "resource", value: "r4" },
      { kind: "actor", value: "nobody" },
    ] as const;
    expect(await worker.counts(keys)).toEqual(await local.counts(keys));
    const q = { key: keys[0], count: 20, from: 10, to: 120, order: "desc", limit: 5 } as const;
    expect(await worker.run(q)).toEqual(await local.run(q));
    expect(await worker.prove(keys[2])).toEqual(await local.prove(keys[2]));
    // An entry out of order is refused there as here, with its code.
    await expect(worker.apply([{ index: 0, payload: payload(0) }])).rejects.toMatchObject({
      code: "INTERNAL",
    });
    await worker.close();
    await expect(worker.load()).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  it.runIf(process.platform === "linux")(
    "runs its thread as 'vellum-index' at nice 10, the rest of the process as it was",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vellum-worker-store-"));
      dirs.push(dir);
      // /proc/<pid>/task/<tid>/stat: "tid (comm) state ..." with nice the 19th field.
      const niceOf = (tid: string) => {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, "latin1");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
      };
      const indexThreads = () =>
        readdirSync("/proc/self/task").filter((tid) => {
          try {
            return readFileSync(`/proc/self/task/${tid}/comm`, "latin1").trim() === "vellum-index";
          } catch {
            return false; // a thread that ended while listed
          }
        });
      const before = indexThreads().length;
      const mainNice = niceOf(String(process.pid));
      const store = await WorkerIndexStore.open(join(dir, "index"), "event-keys");
      await store.load();
      const started = indexThreads();
      expect(started.length).toBe(before + 1);
      expect(started.map(niceOf)).toContain(10);
      expect(niceOf(String(process.pid))).toBe(mainNice);
      await store.close();
    },
  );
});
