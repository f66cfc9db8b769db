/**
 * A flipped byte at rest is never served: one byte flipped inside an entry's payload in a real
 * LevelDB table file (.ldb) of a closed database, then every HTTP read route that would return
 * that entry answers 500 INTEGRITY_FAILURE (in-process, `app.request()`), /metrics counts it,
 * the server's log names it, and `vellum fsck` exits 1 naming the entry's index.
 *
 * The payloads are random bytes: LevelDB compresses table blocks with snappy, which stores
 * incompressible bytes as literals, so the payload is found verbatim in the file and the flip
 * changes exactly one stored byte. LevelDB does not check block checksums on reads (it did not
 * catch this before: 26 entries were served with 200 and other bytes), so the check is ours.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenStore } from "../../src/auth/tokens.js";
import type { Receipt } from "../../src/log/receipt.js";
import { createApp } from "../../src/server/app.js";
import { logMetricHooks, Metrics } from "../../src/server/metrics.js";
import { runVellum } from "../helpers/cli.js";
import { openDataDb, openDataLog } from "../helpers/data-dir.js";
import { b64url, expectJson, expectProblem, get } from "./helpers.js";

const SIZE = 600;
const VICTIM = 300;
let dir: string;
let receipts: Receipt[];
let payloads: Uint8Array[];

/** Finds `needle` in the database's table files; flips one byte of it in place. */
function flipInTables(needle: Uint8Array): string {
  const db = join(dir, "db");
  for (const name of readdirSync(db).filter((n) => n.endsWith(".ldb"))) {
    const bytes = readFileSync(join(db, name));
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    expect(bytes.indexOf(needle, at + 1)).toBe(-1);
    bytes[at + 100]! ^= 0x20;
    writeFileSync(join(db, name), bytes);
    return name;
  }
  throw new Error("the payload is in no .ldb file");
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "vellum-integrity-"));
  const { log, close } = await openDataLog(dir);
  payloads = Array.from({ length: SIZE }, () => new Uint8Array(randomBytes(200)));
  receipts = [];
  for (let at = 0; at < SIZE; at += 100) {
    receipts.push(...(await log.submitMany(payloads.slice(at, at + 100))));
  }
  await close();
  // Reopening turns the write-ahead log into a table file (.ldb), as any restart does.
  await (await openDataDb(dir)).close();
  flipInTables(payloads[VICTIM]!);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a byte flipped in a LevelDB table file", () => {
  it("is refused with 500 INTEGRITY_FAILURE on every read route, logged and counted", async () => {
    const logged: string[] = [];
    const capture = (a: unknown, b?: string) => void logged.push(b ?? String(a));
    const logger = { debug: capture, info: capture, warn: capture, error: capture };
    const metrics = new Metrics();
    const { log, db, close } = await openDataLog(dir, logMetricHooks(metrics, logger));
    try {
      const tokens = await TokenStore.open(db.namespace("tokens"));
      const app = createApp({ log, tokens, metrics, publicReads: true });
      const victim = receipts[VICTIM]!;
      const routes = [
        `/v1/entries/${VICTIM}`,
        `/v1/entries?start=${VICTIM - 10}&limit=20`,
        `/v1/entries/by-id/${victim.idText}`,
        `/v1/entries/by-leaf-hash/${b64url(victim.leafHash)}`,
        `/v1/entries/${VICTIM}/receipt`,
        "/tile/entries/001",
      ];
      for (const route of routes) {
        const body = await expectProblem(await get(app, route), 500, "INTEGRITY_FAILURE");
        expect(body.detail).toMatch(new RegExp(`stored entry ${VICTIM} does not verify`));
      }
      // Its neighbours are served, with their own bytes.
      const next = await expectJson<{ payload: string }>(
        await get(app, `/v1/entries/${VICTIM + 1}`),
        200,
      );
      expect(Buffer.from(next.payload, "base64")).toEqual(Buffer.from(payloads[VICTIM + 1]!));
      await expectJson(await get(app, "/v1/entries?start=0&limit=256"), 200);
      const text = await (await get(app, "/metrics")).text();
      expect(text).toContain(`vellum_integrity_failures_total{kind="leaf"} ${routes.length}`);
      expect(text).toContain('vellum_integrity_failures_total{kind="missing"} 0');
      expect(text).toContain('vellum_errors_total{code="INTEGRITY_FAILURE"} 6');
      expect(
        logged.filter((l) => l.startsWith(`integrity failure: entry ${VICTIM}: `)),
      ).toHaveLength(routes.length);
    } finally {
      await close();
    }
  });

  it("makes `vellum fsck` exit 1 naming the entry", () => {
    const r = runVellum(["fsck", "--data", dir]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(`^problem: entry ${VICTIM}: its stored leaf hashes to `, "m"),
    );
    expect(r.stdout).toMatch(/^1 problem found$/m);
  });
});
