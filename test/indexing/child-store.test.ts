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
import { LocalIndexStore } from "../../src/indexing/local-store.js";
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

describe("ChildIndexStore", () => {
  it("does in its process exactly what LocalIndexStore does here", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
    dirs.push(dir);
    const local = new LocalIndexStore(new MemoryDatabase().namespace("index"), indexKeysOfPayload);
    let worker = await ChildIndexStore.open(join(dir, "index"), "event-keys");
    expect(await worker.load()).toEqual(await local.load());
    let next = 0;
    for (const n of [1, 10, 100, 37]) {
      const entries = Array.from({ length: n }, () => ({ index: next, payload: payload(next++) }));
      expect(Buffer.from(await worker.apply(entries))).toEqual(
        Buffer.from(await local.apply(entries)),
      );
    }
    await worker.close();
    worker = await ChildIndexStore.open(join(dir, "index"), "event-keys");
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
    "runs as a process named 'vellum-index', every thread of it at nice 19, ended by close()",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vellum-child-store-"));
      dirs.push(dir);
      // /proc/<pid>/stat: "pid (comm) state ppid ..." with nice the 19th field.
      const fields = (path: string) => {
        const stat = readFileSync(path, "latin1");
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      };
      const children = () =>
        readdirSync("/proc")
          .filter((p) => /^\d+$/.test(p))
          .filter((p) => {
            try {
              return Number(fields(`/proc/${p}/stat`)[1]) === process.pid;
            } catch {
              return false; // a process that ended while listed
            }
          });
      const before = new Set(children());
      const mainNice = Number(fields(`/proc/${process.pid}/stat`)[16]);
      const store = await ChildIndexStore.open(join(dir, "index"), "event-keys");
      await store.apply([{ index: 0, payload: payload(0) }]); // LevelDB's threads started
      const started = children().filter((p) => !before.has(p));
      expect(started).toHaveLength(1);
      const pid = started[0]!;
      expect(readFileSync(`/proc/${pid}/comm`, "latin1").trim()).toBe("vellum-index");
      const tids = readdirSync(`/proc/${pid}/task`);
      expect(tids.length).toBeGreaterThan(1);
      for (const tid of tids) {
        expect(Number(fields(`/proc/${pid}/task/${tid}/stat`)[16])).toBe(19);
      }
      expect(Number(fields(`/proc/${process.pid}/stat`)[16])).toBe(mainNice);
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
      const child = readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .find((p) => {
          try {
            const stat = readFileSync(`/proc/${p}/stat`, "latin1");
            return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === server.pid;
          } catch {
            return false;
          }
        });
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
});
