/**
 * The LevelDB driver: the shared storage contract on a fresh temp directory, then what only a real
 * disk shows — reopen, the LevelDB LOCK (in this process and from another one), the on-disk
 * namespace prefix, and a SIGKILL durability test against a child process writing batches.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { afterEach, describe, expect, it } from "vitest";
import { isVellumError } from "../../src/core/errors.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { b, del, put, runKeyValueContract, utf8 } from "./contract.js";
import { batchKey, batchValue, ENTRIES, MARKER } from "./fixtures/crash-writer.js";

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vellum-level-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

runKeyValueContract("LevelDB", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vellum-level-"));
  const db = await openLevelDatabase(dir);
  return {
    db,
    cleanup: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const ALL = { gte: b(), lt: b(0xff, 0xff) };

async function openError(dir: string): Promise<unknown> {
  try {
    const db = await openLevelDatabase(dir);
    await db.close();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Bytes of LevelDB's table files in `dir` (what compaction rewrites; the WAL aside). */
async function tableBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    // A table compaction deleted after the listing counts nothing.
    if (name.endsWith(".ldb"))
      total += (await stat(join(dir, name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

describe("LevelDB driver", () => {
  it("compacts a namespace's range: deleted keys' space comes back, nothing else changes", async () => {
    const dir = await tempDir();
    const db = await openLevelDatabase(dir, { writeBufferSize: 256 * 1024 });
    const log = db.namespace("log");
    const other = db.namespace("other");
    // Random values: LevelDB compresses its tables, and would shrink repeated bytes to nothing.
    for (let chunk = 0; chunk < 8; chunk++) {
      await log.write(
        Array.from({ length: 256 }, (_, i) => put(b(0x65, chunk, i), randomBytes(1024))),
      );
    }
    await log.write([put(b(0x73), b(1))]);
    await other.write([put(b(0x65, 0, 0), b(9))]);
    await log.compact!({ gte: b(0x65), lt: b(0x66) });
    const full = await tableBytes(dir);
    expect(full).toBeGreaterThan(2_000_000);
    for (let chunk = 0; chunk < 8; chunk++) {
      await log.write(Array.from({ length: 256 }, (_, i) => del(b(0x65, chunk, i))));
    }
    await log.compact!({ gte: b(0x65), lt: b(0x66) });
    expect(await tableBytes(dir)).toBeLessThan(full / 20);
    // The rest of the namespace, and the other namespace's keys in the same range, are kept.
    expect(await log.get(b(0x73))).toEqual(b(1));
    expect(await other.get(b(0x65, 0, 0))).toEqual(b(9));
    expect(await log.range({ gte: b(0x65), lt: b(0x66) })).toEqual([]);
    await db.close();
  });

  it("compression: off stores tables uncompressed; either way the other opens them", async () => {
    const sizes: number[] = [];
    for (const compression of [true, false]) {
      const dir = await tempDir();
      const db = await openLevelDatabase(dir, { compression, writeBufferSize: 256 * 1024 });
      const kv = db.namespace("log");
      // Repeated bytes: Snappy shrinks them to almost nothing, stored as they are they stay 1 MiB.
      await kv.write(
        Array.from({ length: 1024 }, (_, i) =>
          put(b(0x65, i >> 8, i & 0xff), new Uint8Array(1024).fill(7)),
        ),
      );
      await kv.compact!({ gte: b(0x65), lt: b(0x66) });
      sizes.push(await tableBytes(dir));
      await db.close();
      const reopened = await openLevelDatabase(dir, { compression: !compression });
      expect(await reopened.namespace("log").get(b(0x65, 3, 7))).toEqual(
        new Uint8Array(1024).fill(7),
      );
      await reopened.close();
    }
    const [compressed, plain] = sizes as [number, number];
    expect(plain).toBeGreaterThan(1024 * 1024);
    expect(compressed).toBeLessThan(plain / 10);
  });

  it("sync: false: a write is in the write-ahead log file once it resolves; writeDurable too", async () => {
    const dir = await tempDir();
    const db = await openLevelDatabase(dir, { sync: false });
    const kv = db.namespace("index");
    const marker = (n: number) => new TextEncoder().encode(`unsynced-but-written-${n}`);
    await kv.write([put(b(1), marker(1))]);
    await kv.writeDurable!([put(b(2), marker(2))]);
    // In the kernel's hands already (a killed process loses nothing), not in a buffer of ours.
    const { readFile } = await import("node:fs/promises");
    const logs = (await readdir(dir)).filter((f) => f.endsWith(".log"));
    const wal = Buffer.concat(await Promise.all(logs.map((f) => readFile(join(dir, f)))));
    expect(wal.includes(Buffer.from(marker(1)))).toBe(true);
    expect(wal.includes(Buffer.from(marker(2)))).toBe(true);
    await db.close();
    const again = await openLevelDatabase(dir);
    expect(await again.namespace("index").get(b(1))).toEqual(marker(1));
    expect(await again.namespace("index").get(b(2))).toEqual(marker(2));
    await again.close();
  });

  it("shows persisted data after close and reopen", async () => {
    const dir = await tempDir();
    const first = await openLevelDatabase(dir);
    await first.namespace("log").write([put(b(1), b(1)), put(b(2), b(2))]);
    await first.namespace("log").write([del(b(1)), put(b(3), b(3))]);
    await first.namespace("other").write([put(b(1), b(9))]);
    await first.close();
    const again = await openLevelDatabase(dir);
    expect(await again.namespace("log").range(ALL)).toEqual([
      [b(2), b(2)],
      [b(3), b(3)],
    ]);
    expect(await again.namespace("other").get(b(1))).toEqual(b(9));
    await again.close();
  });

  it("close() waits for writes in flight, which are then on disk", async () => {
    const dir = await tempDir();
    const db = await openLevelDatabase(dir);
    const kv = db.namespace("log");
    const writes = Array.from({ length: 20 }, (_, i) => kv.write([put(b(i), b(i))]));
    await db.close();
    await Promise.all(writes);
    const again = await openLevelDatabase(dir);
    expect(await again.namespace("log").range(ALL)).toHaveLength(20);
    await again.close();
  });

  it("throws LOCKED when the directory is already open in this process, until it is closed", async () => {
    const dir = await tempDir();
    const first = await openLevelDatabase(dir);
    const e = await openError(dir);
    expect(isVellumError(e, "LOCKED")).toBe(true);
    expect((e as Error).message).toBe(`${dir} is in use by another Vellum process (LevelDB LOCK)`);
    expect((e as Error).cause).toBeDefined();
    // The first handle is unaffected, and the lock goes away with it.
    await first.namespace("log").write([put(b(1), b(1))]);
    await first.close();
    const second = await openLevelDatabase(dir);
    expect(await second.namespace("log").get(b(1))).toEqual(b(1));
    await second.close();
  });

  it("throws STORAGE_FAILURE with the cause attached for other open errors", async () => {
    const dir = await tempDir();
    const file = join(dir, "not-a-directory");
    await writeFile(file, "x");
    const e = await openError(file);
    expect(isVellumError(e, "STORAGE_FAILURE")).toBe(true);
    expect((e as Error).cause).toBeInstanceOf(Error);
    const missing = await openError(join(dir, "missing"));
    expect(missing).toBeUndefined(); // created by default
    const refused = await openLevelDatabase(join(dir, "absent"), { createIfMissing: false }).then(
      () => "opened",
      (err: unknown) => (isVellumError(err) ? err.code : err),
    );
    expect(refused).toBe("STORAGE_FAILURE");
  });

  it('stores namespace keys under "!name!", readable with a stock level sublevel', async () => {
    const dir = await tempDir();
    const db = await openLevelDatabase(dir);
    await db.namespace("a").write([put(b(1), b(0xa))]);
    await db.namespace("ab").write([put(utf8("k"), b(0xb))]);
    await db.close();
    const raw = new Level<Uint8Array, Uint8Array>(dir, {
      keyEncoding: "view",
      valueEncoding: "view",
    });
    try {
      const keys = (await raw.keys().all()).map((k) => Buffer.from(k).toString("latin1"));
      expect(keys).toEqual(["!a!\u0001", "!ab!k"]);
      const sub = raw.sublevel<Uint8Array, Uint8Array>("ab", {
        keyEncoding: "view",
        valueEncoding: "view",
      });
      expect(Buffer.from((await sub.get(utf8("k")))!)).toEqual(Buffer.from([0xb]));
    } finally {
      await raw.close();
    }
  });
});

describe("LevelDB durability across SIGKILL", () => {
  const fixture = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));
  const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

  it("keeps every acknowledged batch and never half a batch; another process gets LOCKED", async () => {
    const dir = await tempDir();
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", fixture, dir], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on("exit", (code, signal) => resolve(signal ?? code)),
    );

    let maxAck = 0;
    let lockedCode: string | undefined;
    const target = 100;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`only ${maxAck} acks in time; stderr: ${stderr}`)),
          8000,
        );
        let buffered = "";
        let checkedLock = false;
        child.stdout!.on("data", (d: Buffer) => {
          buffered += d.toString("utf8");
          const lines = buffered.split("\n");
          buffered = lines.pop()!;
          for (const line of lines) {
            if (line === "ready" && !checkedLock) {
              checkedLock = true;
              // While the child holds the directory, this process must be refused.
              openError(dir).then((e) => {
                lockedCode = isVellumError(e) ? e.code : String(e);
              });
            } else if (line.startsWith("ack ")) {
              const n = Number(line.slice(4));
              if (n !== maxAck + 1) reject(new Error(`ack ${n} after ack ${maxAck}`));
              maxAck = n;
            }
          }
          if (maxAck >= target && lockedCode !== undefined) {
            clearTimeout(timer);
            child.kill("SIGKILL");
            resolve();
          }
        });
        child.on("exit", () => {
          clearTimeout(timer);
          reject(new Error(`crash-writer exited early after ${maxAck} acks; stderr: ${stderr}`));
        });
      });
    } finally {
      child.kill("SIGKILL");
    }
    expect(await exited).toBe("SIGKILL");
    expect(lockedCode).toBe("LOCKED");

    const db = await openLevelDatabase(dir);
    try {
      const kv = db.namespace("crash");
      const marker = await kv.get(MARKER);
      expect(marker).toBeDefined();
      const last = Number(new DataView(marker!.buffer, marker!.byteOffset).getBigUint64(0));
      // At most the batches written after the last ack we read can have landed on top.
      expect(last).toBeGreaterThanOrEqual(maxAck);

      const rows = await kv.range({ gte: batchKey(0, 0), lt: batchKey(last + 1000, 0) });
      const perBatch = new Map<number, number>();
      for (const [key, value] of rows) {
        const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
        const n = Number(view.getBigUint64(0));
        const i = view.getUint16(8);
        expect(Buffer.compare(value, batchValue(n, i))).toBe(0);
        perBatch.set(n, (perBatch.get(n) ?? 0) + 1);
      }
      // Exactly batches 1..last are present, each complete; nothing from a later batch.
      expect([...perBatch.keys()]).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect([...perBatch.values()].every((count) => count === ENTRIES)).toBe(true);
      expect(rows).toHaveLength(last * ENTRIES);
    } finally {
      await db.close();
    }
  }, 15_000);
});
