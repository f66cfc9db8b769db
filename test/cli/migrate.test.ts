/**
 * `vellum migrate` as a process (bin/vellum.js over dist/) on a real LevelDB data directory made
 * the way servers made it before layout 3 (DATA/db alone, no DATA/entries): refused while the
 * directory is in use; then the log's leaves moved to a new DATA/entries, fsck clean, a second
 * run with nothing to do, and `vellum serve` on the result answering for the old entries (a
 * receipt that verifies against the log's key) and taking new ones.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { databasePaths, openEmbeddedDatabases } from "../../src/cli/embedded-db.js";
import { readKeyArg } from "../../src/cli/keys-arg.js";
import { base64Decode } from "../../src/core/bytes.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { parseTlogProof, verifyTlogProof } from "../../src/core/tlog-proof.js";
import { LAYOUT_KEY } from "../../src/storage/kv-log-layout.js";
import { migrateToEntriesStore } from "../../src/storage/kv-log-migrate.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import type { KeyValueStore } from "../../src/storage/types.js";
import { runVellum } from "../helpers/cli.js";
import { openDataDb, openDataLog } from "../helpers/data-dir.js";
import { startVellum } from "../helpers/processes.js";

let dir: string;
const SIZE = 700;
const payloadOf = (i: number) => new TextEncoder().encode(`{"n":${i}}`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "vellum-migrate-"));
  const { log, close } = await openDataLog(dir);
  for (let at = 0; at < SIZE; at += 100) {
    await log.submitMany(Array.from({ length: 100 }, (_, i) => payloadOf(at + i)));
  }
  await close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("vellum migrate", () => {
  it("moves a layout-2 directory's leaves to DATA/entries; fsck is clean; serve answers for old and new entries", async () => {
    expect(existsSync(join(dir, "entries"))).toBe(false);
    const db = await openDataDb(dir);
    expect(await db.namespace("log").get(LAYOUT_KEY)).toEqual(Uint8Array.of(2));
    // In use (this process holds DATA/db, as a running server would): refused, nothing changed.
    try {
      const busy = runVellum(["migrate", "--data", dir]);
      expect(busy.code).toBe(4);
      expect(busy.stderr).toMatch(/is in use by a running server: stop it first/);
    } finally {
      await db.close();
    }

    const r = runVellum(["migrate", "--data", dir]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(
      /^log: 700 entries, layout 2 → 3: 700 leaves moved to DATA\/entries \(\d+\.\d s\)$/m,
    );
    expect(r.stdout).toMatch(
      /^DATA\/db: [\d.]+ MiB before, [\d.]+ MiB after; DATA\/entries: [\d.]+ MiB$/m,
    );
    expect(existsSync(join(dir, "entries"))).toBe(true);
    const check = runVellum(["fsck", "--data", dir]);
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toContain("700 leaves re-hashed");

    const again = runVellum(["migrate", "--data", dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("log: 700 entries, already layout 3\n");

    const server = await startVellum(["serve", "--data", dir, "--port", "0"], "/readyz");
    try {
      const env = { VELLUM_URL: server.url, VELLUM_DATA: dir };
      const token = runVellum(["tokens", "create", "--name", "reader", "--scopes", "read"], {
        env,
      });
      expect(token.code, token.stderr).toBe(0);
      const res = await fetch(`${server.url}/v1/entries/123/receipt`, {
        headers: { Authorization: `Bearer ${token.stdout.trim()}` },
      });
      expect(res.status).toBe(200);
      const receipt = (await res.json()) as { receipt: string; leafHash: string; index: number };
      expect(receipt.index).toBe(123);
      const logKey = verifierFromKey(readKeyArg(join(dir, "log.vkey")));
      expect(verifyTlogProof(receipt.receipt, base64Decode(receipt.leafHash), logKey).index).toBe(
        123,
      );
      expect(parseTlogProof(receipt.receipt).index).toBe(123);
      const submitted = runVellum(["submit", "-"], { env, input: "after the move" });
      expect(submitted.code, submitted.stderr).toBe(0);
    } finally {
      await server.stop();
    }
    const after = runVellum(["fsck", "--data", dir]);
    expect(after.code, after.stdout).toBe(0);
    expect(after.stdout).toContain(`tree size ${SIZE + 1}`);
  });

  it("a migration cut off: serve refuses (exit 3) and fsck names it until migrate runs again and finishes", async () => {
    const cut = mkdtempSync(join(tmpdir(), "vellum-migrate-cut-"));
    try {
      const { log, close } = await openDataLog(cut);
      await log.submitMany(Array.from({ length: 300 }, (_, i) => payloadOf(i)));
      await close();
      // The log store's second write fails: the marker and the first chunk's copy to DATA/entries
      // landed, that chunk's delete from DATA/db did not.
      const dbs = await openEmbeddedDatabases(databasePaths(cut), {
        createIfMissing: false,
        createEntries: true,
      });
      const { kv, entries } = dbs.place("log");
      let writes = 0;
      const failing: KeyValueStore = {
        ...kv,
        get: (k) => kv.get(k),
        getMany: (k) => kv.getMany(k),
        range: (o) => kv.range(o),
        write: (ops) => (++writes === 2 ? Promise.reject(new Error("cut off")) : kv.write(ops)),
      };
      await expect(migrateToEntriesStore(failing, entries!, { chunk: 100 })).rejects.toThrow(
        "cut off",
      );
      await dbs.close();

      const serve = runVellum(["serve", "--data", cut, "--port", "0"], { timeoutMs: 20_000 });
      expect(serve.code, serve.stdout).toBe(3);
      expect(serve.stderr).toContain("run `vellum migrate` again");
      const check = runVellum(["fsck", "--data", cut]);
      expect(check.code).toBe(1);
      expect(check.stdout).toContain(
        "problem: the log's move to layout 3 (vellum migrate) was cut off before it finished",
      );
      const again = runVellum(["migrate", "--data", cut]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(
        /^log: 300 entries, layout 2 → 3 \(finishing a migration that was cut off\): 300 leaves moved/m,
      );
      const clean = runVellum(["fsck", "--data", cut]);
      expect(clean.code, clean.stdout).toBe(0);
      expect(clean.stdout).toContain("300 leaves re-hashed");
    } finally {
      rmSync(cut, { recursive: true, force: true });
    }
  });

  it("says what is wrong with a directory that is not a data directory, and when there is no log", async () => {
    const empty = mkdtempSync(join(tmpdir(), "vellum-migrate-empty-"));
    try {
      const r = runVellum(["migrate", "--data", empty]);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/is not a Vellum data directory \(it has no db\/\)/);
      await (await openLevelDatabase(join(empty, "db"))).close();
      const none = runVellum(["migrate", "--data", empty]);
      expect({ code: none.code, stderr: none.stderr }).toEqual({ code: 0, stderr: "" });
      expect(none.stdout).toMatch(/^no log is stored in .*db: nothing to move$/m);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
