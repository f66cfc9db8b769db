/**
 * The LevelDB driver under real faults: a write-ahead log with a flipped byte (refused at open,
 * never silently truncated), a torn tail (accepted: it was never acknowledged), and a full disk
 * (a 2 MiB tmpfs: the failed write stops every later write until `recover()` reopens the
 * database; nothing acknowledged is lost, before or after a reopen).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isVellumError } from "../../src/core/errors.js";
import { storageFailureClass } from "../../src/storage/failure.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { checkWalFile, crc32c } from "../../src/storage/level-wal.js";
import type { KeyValueStore } from "../../src/storage/types.js";
import { put } from "./contract.js";

const dirs: string[] = [];
const mounts: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vellum-level-faults-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const m of mounts.splice(0)) execFileSync("umount", [m]);
  for (const dir of dirs.splice(0)) {
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
});

const value = (i: number) => new Uint8Array(200).fill(i % 251);
const b = (n: number) => Uint8Array.of(n >> 16, (n >> 8) & 0xff, n & 0xff);

/** Writes `n` entries, one synced write (one write-ahead log record) each, and closes. */
async function databaseWithLog(dir: string, n: number): Promise<string> {
  const db = await openLevelDatabase(dir);
  const kv = db.namespace("log");
  for (let i = 0; i < n; i++) await kv.write([put(b(i), value(i))]);
  await db.close(); // LevelDB keeps the records in its log until the next open
  const logs = (await readdir(dir)).filter((f) => /^\d+\.log$/.test(f));
  expect(logs).toHaveLength(1);
  return join(dir, logs[0]!);
}

async function openError(dir: string): Promise<unknown> {
  return openLevelDatabase(dir).then(
    async (db) => {
      await db.close();
      return undefined;
    },
    (e: unknown) => e,
  );
}

describe("write-ahead log check at open", () => {
  it("computes CRC-32C as LevelDB does (RFC 3720 test vector)", () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
  });

  it("refuses a log with a flipped byte followed by valid records, naming the file and offset", async () => {
    const dir = await tempDir();
    const log = await databaseWithLog(dir, 20);
    expect(checkWalFile(log)).toBeUndefined();
    const bytes = await readFile(log);
    const at = Math.floor(bytes.length / 3);
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(log, bytes);
    const damage = checkWalFile(log);
    expect(damage?.reason).toMatch(/checksum mismatch|record/);
    const e = await openError(dir);
    expect(isVellumError(e, "STORAGE_FAILURE")).toBe(true);
    expect(storageFailureClass(e)).toBe("CORRUPTION");
    expect((e as Error).message).toContain(log);
    expect((e as Error).message).toMatch(/valid records after it/);
    // Refusing changed nothing: the damaged log is still there for an operator to inspect.
    expect(await readFile(log)).toEqual(bytes);
  });

  it("accepts a torn tail (a record cut short) and keeps every record before it", async () => {
    const dir = await tempDir();
    const log = await databaseWithLog(dir, 20);
    const size = (await stat(log)).size;
    await truncate(log, size - 50);
    expect(checkWalFile(log)).toBeUndefined();
    const db = await openLevelDatabase(dir);
    const kv = db.namespace("log");
    const got = await kv.getMany(Array.from({ length: 20 }, (_, i) => b(i)));
    expect(got.slice(0, 19)).toEqual(Array.from({ length: 19 }, (_, i) => value(i)));
    expect(got[19]).toBeUndefined(); // the torn, never-acknowledged last write
    await db.close();
  });

  it("accepts a damaged last record with nothing after it (a write cut short by a crash)", async () => {
    const dir = await tempDir();
    const log = await databaseWithLog(dir, 5);
    const bytes = await readFile(log);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await writeFile(log, bytes);
    expect(checkWalFile(log)).toBeUndefined();
    const db = await openLevelDatabase(dir);
    expect(await db.namespace("log").get(b(3))).toEqual(value(3));
    await db.close();
  });
});

/** Mounts a tmpfs of `size` on a new directory; undefined when this process cannot. */
function smallDisk(size: string): string | undefined {
  const dir = execFileSync("mktemp", ["-d", join(tmpdir(), "vellum-tmpfs-XXXXXX")], {
    encoding: "utf8",
  }).trim();
  dirs.push(dir);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  } catch (e) {
    if (process.env.CI === "true") throw new Error(`CI must be able to mount a tmpfs: ${e}`);
    return undefined;
  }
  mounts.push(dir);
  return dir;
}

const canMount = process.env.CI === "true" || process.getuid?.() === 0;

describe.skipIf(!canMount)("a full disk (a 2 MiB tmpfs; root only)", () => {
  it("stops writes after ENOSPC until recover(), then loses nothing acknowledged", async () => {
    const disk = smallDisk("2m");
    if (disk === undefined) {
      console.warn("skipped: cannot mount a tmpfs here (run as root)");
      return;
    }
    // A filler file to delete later, as an operator frees space.
    const filler = join(disk, "filler");
    await writeFile(filler, new Uint8Array(256 * 1024));
    const dir = join(disk, "db");
    const db = await openLevelDatabase(dir, { writeBufferSize: 256 * 1024 });
    const kv: KeyValueStore = db.namespace("log");
    let acked = 0;
    let failure: unknown;
    for (let i = 0; i < 20_000 && failure === undefined; i++) {
      try {
        const v = randomBytes(4000); // incompressible: tables take real space
        v[0] = i % 251;
        await kv.write([put(b(i), v)]);
        acked = i + 1;
      } catch (e) {
        failure = e;
      }
    }
    expect(isVellumError(failure, "STORAGE_FAILURE")).toBe(true);
    expect(storageFailureClass(failure)).toBe("ENOSPC");
    expect((failure as Error).message).toMatch(/^disk full \(ENOSPC\)/);
    // Fail-stop: even a tiny write is refused, though it might fit now.
    const refused = await kv.write([put(b(1_000_000), b(1))]).catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(/stopped after a failed write/);
    // The sequencer's path (puts one by one) is stopped the same way.
    const refusedPuts = await kv.writePuts!((p) => p(b(1_000_001), b(1))).catch((e: unknown) => e);
    expect((refusedPuts as Error).message).toMatch(/stopped after a failed write/);
    expect((await kv.get(b(acked - 1)))?.[0]).toBe((acked - 1) % 251);

    await rm(filler);
    // Old tables may have to be compacted before the reopen has room; retry as the log does.
    for (let tries = 0; ; tries++) {
      try {
        await kv.recover();
        break;
      } catch (e) {
        if (tries >= 20) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await kv.write([put(b(1_000_000), b(1))]);
    await db.close();

    const again = await openLevelDatabase(dir);
    const got = await again.namespace("log").getMany(Array.from({ length: acked }, (_, i) => b(i)));
    expect(got.every((v, i) => v !== undefined && v[0] === i % 251 && v.length === 4000)).toBe(
      true,
    );
    expect(await again.namespace("log").get(b(1_000_000))).toEqual(b(1));
    await again.close();
  }, 60_000);
});
