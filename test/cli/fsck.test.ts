/**
 * `vellum fsck` as a process (bin/vellum.js over dist/; `npm test` builds it) on a real LevelDB
 * data directory made the way `vellum serve` makes it: exit 0 and a summary when clean, `--json`
 * for machines, exit 1 naming a tampered checkpoint, a tampered tile node and a missing entry,
 * exit 2 for a usage error, a directory that is not a log's, and one a running server holds.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointKey, entryKey, tileKey } from "../../src/storage/kv-log-layout.js";
import { runVellum } from "../helpers/cli.js";
import { openDataDb, openDataLog } from "../helpers/data-dir.js";

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "vellum-fsck-"));
  const { log, close } = await openDataLog(dir, { dedup: "payload" });
  for (let at = 0; at < 700; at += 100) {
    await log.submitMany(
      Array.from({ length: 100 }, (_, i) => new TextEncoder().encode(`{"n":${at + i}}`)),
    );
  }
  await close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Changes one stored value through the storage API, with the server stopped. */
async function damage(key: Uint8Array, change: (v: Uint8Array) => Uint8Array | undefined) {
  const db = await openDataDb(dir);
  const kv = db.namespace("log");
  const value = change((await kv.get(key))!.slice());
  await kv.write([value === undefined ? { type: "del", key } : { type: "put", key, value }]);
  await db.close();
}

describe("vellum fsck", () => {
  it("exits 0 on a clean log, with a summary of what it checked", () => {
    const r = runVellum(["fsck", "--data", dir]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain('log "test.example/data-dir", tree size 700');
    expect(r.stdout).toContain("700 leaves re-hashed");
    expect(r.stdout).toContain(
      "8 stored checkpoints checked (signatures, roots); DATA/checkpoint (size 700) too",
    );
    expect(r.stdout).toContain(
      "checked in full: id 700, leaf hash 700, payload 700, idempotency key 0",
    );
    expect(r.stdout).toMatch(/^clean: no problems found$/m);
    const json = JSON.parse(runVellum(["fsck", "--data", dir, "--json"]).stdout);
    expect(json).toMatchObject({
      clean: true,
      size: 700,
      entries: 700,
      problemCount: 0,
      problems: [],
    });
  });

  it("exits 2 on a usage error, a directory that is not a log's, and one in use", async () => {
    const usage = runVellum(["fsck", "--data", dir, "--no-such-option"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/unknown option '--no-such-option'/);
    expect(runVellum(["fsck", "--data", dir, "extra"]).code).toBe(2);
    const empty = mkdtempSync(join(tmpdir(), "vellum-fsck-empty-"));
    try {
      const r = runVellum(["fsck", "--data", empty]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/is not a Vellum data directory \(it needs log\.vkey and db\/\)/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    // This process holds the database, as a running server would.
    const db = await openDataDb(dir);
    try {
      const r = runVellum(["fsck", "--data", dir]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/is in use by a running server \(LevelDB LOCK\): stop it first/);
    } finally {
      await db.close();
    }
  });

  it("exits 1 naming a tampered checkpoint, a tampered tile node and a missing entry", async () => {
    await damage(checkpointKey(300), (note) => {
      const text = new TextDecoder().decode(note);
      // Another root on the note's third line: its signature no longer matches.
      const lines = text.split("\n");
      lines[2] = `${lines[2]!.slice(0, 10)}${lines[2]![10] === "A" ? "B" : "A"}${lines[2]!.slice(11)}`;
      return new TextEncoder().encode(lines.join("\n"));
    });
    await damage(tileKey(0, 1), (tile) => {
      tile[2 + (256 + 64) * 32]! ^= 0x80; // row 1, position 64: node 1/192
      return tile;
    });
    await damage(entryKey(650), () => undefined);
    const r = runVellum(["fsck", "--data", dir]);
    expect(r.code).toBe(1);
    const problems = r.stdout.split("\n").filter((l) => l.startsWith("problem: "));
    expect(problems).toEqual([
      expect.stringMatching(
        /^problem: checkpoint at size 300 does not verify with the log's key test\.example\/data-dir: /,
      ),
      expect.stringMatching(
        /^problem: tile 0\/1: node 1\/192 is \w+…, the hash of its children is \w+…$/,
      ),
      "problem: entry 650 is missing from storage",
    ]);
    expect(r.stdout).toMatch(/^3 problems found$/m);
    const json = JSON.parse(runVellum(["fsck", "--data", dir, "--json"]).stdout);
    expect(json.clean).toBe(false);
    expect(json.problems.map((p: { kind: string }) => p.kind)).toEqual([
      "checkpoint",
      "tile",
      "entry",
    ]);
  });
});
