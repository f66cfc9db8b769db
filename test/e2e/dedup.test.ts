/**
 * End to end, through the real `vellum serve` on 127.0.0.1 (bin/vellum.js over the built dist/):
 * identical events are distinct entries unless an idempotency key says otherwise; `--dedup
 * payload` keeps the old rule, stored with the log (a restart asking for the other rule is
 * refused); a log written before the setting existed keeps payload dedup and its receipts; and
 * each entry names the token that submitted it, provably: the submitter is in the leaf, so the
 * receipt verified with the payload (SDK and `vellum verify`) proves it, and a receipt that
 * claims another submitter fails.
 *
 * Each test runs on the embedded LevelDB (the default) and with `--store postgres://…` against a
 * real PostgreSQL (`scripts/services.sh up postgres`; skipped locally without it, required under
 * CI), each log with an origin of its own there (a fresh set of schemas in the shared test
 * database). Only the step that makes a log from before the setting is LevelDB's alone: it
 * deletes the stored rule from DATA/db, and a PostgreSQL log always has one (state.dedup is
 * NOT NULL: the store is newer than the setting).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { VellumClient } from "../../src/client/http.js";
import { verifyReceipt } from "../../src/client/receipts.js";
import { base64Encode, utf8Encode } from "../../src/core/bytes.js";
import { decodeLeaf, decodeLeafFields, encodeLeafFields } from "../../src/core/entry.js";
import { decodeEntryBundle } from "../../src/core/tiles.js";
import { parseTlogProof } from "../../src/core/tlog-proof.js";
import { DEDUP_KEY } from "../../src/storage/kv-log-layout.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { runVellum } from "../helpers/cli.js";
import { spawnVellum, startVellum, type VellumProcess } from "../helpers/processes.js";
import { needService } from "../helpers/services.js";

const HOST = "127.0.0.1";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "vellum-dedup-e2e-"));
  dirs.push(d);
  return d;
};
const serveArgs = (data: string, extra: string[] = []) => [
  "serve",
  "--data",
  data,
  "--port",
  "0",
  "--host",
  HOST,
  ...extra,
];
const start = (data: string, extra: string[] = []) =>
  startVellum(serveArgs(data, extra), "/readyz", 15_000);

const login = utf8Encode('{"user":"bob","action":"login"}');

interface Receipt {
  index: number;
  id: string;
  submitter: string | null;
  duplicate: boolean;
  receipt: string;
}

async function post(
  s: VellumProcess,
  token: string,
  body: Uint8Array,
  key?: string,
): Promise<{ status: number; body: Receipt & { code?: string } }> {
  const res = await fetch(`${s.url}/v1/entries`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/octet-stream",
      ...(key === undefined ? {} : { "Idempotency-Key": key }),
    },
    body,
  });
  return { status: res.status, body: (await res.json()) as Receipt & { code?: string } };
}

async function getJson<T>(s: VellumProcess, path: string, token: string): Promise<T> {
  const res = await fetch(`${s.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

const adminToken = (data: string) => readFileSync(join(data, "admin.token"), "utf8").trim();
const logKey = (data: string) => readFileSync(join(data, "log.vkey"), "utf8").trim();

/** Where a log is kept. */
interface Backend {
  /** Arguments for a new log, the same for every server of that log (restarts included). */
  newLog(): string[];
  /**
   * Makes the stopped log in `data` one written before the dedup setting existed (no stored
   * rule), where a backend can hold such a log.
   */
  fromBeforeTheSetting?(data: string): Promise<void>;
}

function dedupSuite(backend: Backend): void {
  it("logs identical events twice, dedups by key, and proves who submitted each entry", async () => {
    const data = tempDir();
    const log = backend.newLog();
    const s = await start(data, log);
    const admin = adminToken(data);
    expect(s.stdout()).toMatch(/deduplicating by idempotency key only/);
    const info = await getJson<{ dedup: string }>(s, "/v1/log", admin);
    expect(info.dedup).toBe("key");
    const { tokens } = await getJson<{ tokens: { id: string; name: string }[] }>(
      s,
      "/v1/tokens",
      admin,
    );
    const adminId = tokens.find((t) => t.name === "admin (first start)")!.id;
    expect(adminId).toMatch(/^[0-9a-f]{16}$/);

    // Bob logs in twice: two events, two entries.
    const first = await post(s, admin, login);
    const second = await post(s, admin, login);
    expect([first.status, second.status]).toEqual([201, 201]);
    expect([first.body.index, second.body.index]).toEqual([0, 1]);
    expect(first.body.submitter).toBe(adminId);
    // A key makes a retry the same entry; the same key with other bytes is a conflict.
    const keyed = await post(s, admin, login, "evt-7");
    const retry = await post(s, admin, login, "evt-7");
    expect([keyed.status, retry.status]).toEqual([201, 200]);
    expect(retry.body).toMatchObject({ index: 2, duplicate: true, id: keyed.body.id });
    const conflict = await post(s, admin, utf8Encode("other"), "evt-7");
    expect(conflict.status).toBe(409);
    expect(conflict.body.code).toBe("CONFLICT");

    // Another token: its own id is committed to in its entries.
    const res = await fetch(`${s.url}/v1/tokens`, {
      method: "POST",
      headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "ingest", scopes: ["append", "read"] }),
    });
    const ingest = (await res.json()) as { token: string; id: string };
    expect(res.status).toBe(201);
    const theirs = await post(s, ingest.token, login);
    expect(theirs.body).toMatchObject({ index: 3, submitter: ingest.id, duplicate: false });

    // The SDK's batches carry it too (rebuilt from the multiproof answer).
    const client = new VellumClient({ url: s.url, token: ingest.token });
    const batch = await client.submitBatch([{ payload: login }, { payload: login }]);
    expect(batch.map((r) => [r.index, r.submitter, r.duplicate])).toEqual([
      [4, ingest.id, false],
      [5, ingest.id, false],
    ]);

    // Verified with the payload, each receipt proves its submitter.
    const vkey = logKey(data);
    for (const [r, who] of [
      [first.body.receipt, adminId],
      [theirs.body.receipt, ingest.id],
      [batch[1]!.receipt, ingest.id],
    ] as const) {
      expect(verifyReceipt(r, { logKey: vkey, payload: login })).toMatchObject({
        submitter: who,
        payloadChecked: true,
      });
    }
    // A receipt edited to claim the other token (or no token) does not verify.
    const text = theirs.body.receipt;
    const extra = parseTlogProof(text).extra!;
    const fields = decodeLeafFields(extra);
    const forged = encodeLeafFields({ ...fields, submitter: adminId });
    const unsigned = encodeLeafFields({
      id: fields.id,
      timestamp: fields.timestamp,
      leafHash: fields.leafHash!,
    });
    for (const other of [forged, unsigned]) {
      const tampered = text.replace(base64Encode(extra), base64Encode(other));
      expect(tampered).not.toBe(text);
      expect(() => verifyReceipt(tampered, { logKey: vkey, payload: login })).toThrow(
        /does not match the receipt/,
      );
    }

    // `vellum verify` says who, and proves it only with the entry.
    const dir = tempDir();
    writeFileSync(join(dir, "r.tlog-proof"), text);
    writeFileSync(join(dir, "login.json"), login);
    const ok = runVellum([
      "verify",
      join(dir, "r.tlog-proof"),
      "--key",
      join(data, "log.vkey"),
      "--entry",
      join(dir, "login.json"),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`submitted by token ${ingest.id})`);
    const bare = runVellum(["verify", join(dir, "r.tlog-proof"), "--key", join(data, "log.vkey")]);
    expect(bare.stdout).toContain(`submitted by token ${ingest.id} (unproven without --entry)`);
    writeFileSync(
      join(dir, "forged.tlog-proof"),
      text.replace(base64Encode(extra), base64Encode(forged)),
    );
    const bad = runVellum([
      "verify",
      join(dir, "forged.tlog-proof"),
      "--key",
      join(data, "log.vkey"),
      "--entry",
      join(dir, "login.json"),
    ]);
    expect(bad.code).not.toBe(0);

    // Entries and entry bundles show it; the bundle's leaves are version 2.
    const entry = await getJson<{ submitter: string }>(s, "/v1/entries/3", admin);
    expect(entry.submitter).toBe(ingest.id);
    const bundle = await fetch(`${s.url}/tile/entries/000.p/6`, {
      headers: { Authorization: `Bearer ${admin}` },
    });
    const leaves = decodeEntryBundle(new Uint8Array(await bundle.arrayBuffer()));
    expect(leaves.map((l) => decodeLeaf(l).submitter)).toEqual([
      adminId,
      adminId,
      adminId,
      ingest.id,
      ingest.id,
      ingest.id,
    ]);

    // The rule is stored with the log: a restart asking for payload dedup is refused.
    await s.stop();
    const refused = spawnVellum(serveArgs(data, [...log, "--dedup", "payload"]));
    const exit = await refused.exited;
    expect(exit.code, refused.output()).not.toBe(0);
    expect(refused.output()).toMatch(/cannot change to "payload"/);
    const again = await start(data, log);
    expect((await getJson<{ dedup: string }>(again, "/v1/log", admin)).dedup).toBe("key");
    expect((await post(again, admin, login)).body.index).toBe(6);
    await again.stop();
  });

  const title =
    backend.fromBeforeTheSetting === undefined
      ? "--dedup payload keeps the old rule across restarts, until switched to key"
      : "--dedup payload keeps the old rule, and a log from before the setting keeps it too";
  it(title, async () => {
    const data = tempDir();
    const log = backend.newLog();
    const s = await start(data, [...log, "--dedup", "payload"]);
    const admin = adminToken(data);
    expect((await getJson<{ dedup: string }>(s, "/v1/log", admin)).dedup).toBe("payload");
    const a = await post(s, admin, login);
    const b = await post(s, admin, login);
    expect([a.status, b.status]).toEqual([201, 200]);
    expect(b.body).toMatchObject({ index: 0, duplicate: true, id: a.body.id });
    await s.stop();

    // Make it a log written before the setting existed, where the backend can hold one;
    // otherwise a restart without --dedup keeps the stored rule just the same.
    await backend.fromBeforeTheSetting?.(data);

    const old = await start(data, log);
    expect((await getJson<{ dedup: string }>(old, "/v1/log", admin)).dedup).toBe("payload");
    expect(old.stdout()).toMatch(/deduplicating by payload/);
    const c = await post(old, admin, login);
    expect(c.body).toMatchObject({ index: 0, duplicate: true, id: a.body.id });
    // Its old receipt still verifies, offline, with the payload.
    expect(verifyReceipt(a.body.receipt, { logKey: logKey(data), payload: login }).index).toBe(0);
    await old.stop();

    // The operator switches it to key dedup: said in the server's log, and stored.
    const switched = await start(data, [...log, "--dedup", "key"]);
    // A JSON log line (stdout is not a terminal) escapes the quotes.
    expect(switched.stdout()).toMatch(/deduplication changed from \\?"payload\\?" to \\?"key\\?"/);
    expect((await post(switched, admin, login)).body).toMatchObject({ index: 1, duplicate: false });
    await switched.stop();
    const after = await start(data, log);
    expect((await getJson<{ dedup: string }>(after, "/v1/log", admin)).dedup).toBe("key");
    await after.stop();
  });

  it("refuses an unknown --dedup before touching the data directory", () => {
    const data = join(tempDir(), "never");
    const r = runVellum(serveArgs(data, [...backend.newLog(), "--dedup", "hash"]), {
      timeoutMs: 20_000,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--dedup must be "key" or "payload"/);
    expect(() => readFileSync(join(data, "log.vkey"))).toThrow();
  });
}

describe("vellum serve on LevelDB: dedup by idempotency key, and the submitter, over HTTP", () =>
  dedupSuite({
    newLog: () => [],
    // The same data without "d".
    async fromBeforeTheSetting(data) {
      const db = await openLevelDatabase(join(data, "db"));
      await db.namespace("log").write([{ type: "del", key: DEDUP_KEY }]);
      await db.close();
    },
  }));

const pg = needService("postgres", ["VELLUM_PG_URL"]);

describe.skipIf(pg === undefined)(
  "vellum serve on PostgreSQL: dedup by idempotency key, and the submitter, over HTTP",
  () =>
    dedupSuite({
      // A fresh origin: a fresh set of schemas in the shared test database.
      newLog: () => [
        ...["--store", pg?.VELLUM_PG_URL ?? ""],
        ...["--origin", `e2e-${randomBytes(4).toString("hex")}.dedup.test/log`],
      ],
    }),
);
