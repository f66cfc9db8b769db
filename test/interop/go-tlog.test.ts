/**
 * An independent tlog-tiles client against a real `vellum serve --access-log` on 127.0.0.1: Go's
 * golang.org/x/mod/sumdb/note and sumdb/tlog (the Go checksum database's own verifier, from
 * Debian's golang-golang-x-mod-dev) check the log, the access log and both index logs — each
 * checkpoint's signature, every tile against the root, every entry against its leaf hash with an
 * inclusion proof, and a consistency proof — through test/interop/go-tlog/main.go. A proxy that
 * alters one byte of a tile or a bundle, or a wrong key, makes it fail.
 *
 * Needs `go` and x/mod in GOPATH (Debian: apt-get install golang-go golang-golang-x-mod-dev);
 * .ci/run installs them, and under CI=true their absence fails instead of skipping.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Archiver } from "../../src/archive/archiver.js";
import { WormBucket } from "../../src/archive/bucket.js";
import { parseRetention } from "../../src/archive/retention.js";
import { indexLogVerifierKey } from "../../src/core/index-answer.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { runVellum } from "../helpers/cli.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";
import { needService, S3_KEYS } from "../helpers/services.js";
import { openMemoryLog } from "../log/helpers.js";

const GOPATH = "/usr/share/gocode";
const SOURCE = fileURLToPath(new URL("./go-tlog/", import.meta.url));

function goAvailable(): boolean {
  const go = spawnSync("go", ["version"], { encoding: "utf8" });
  const ok = go.status === 0 && existsSync(`${GOPATH}/src/golang.org/x/mod/sumdb/tlog`);
  if (ok) return true;
  const how = "install Debian's golang-go and golang-golang-x-mod-dev (apt-get install -y …)";
  if (process.env.CI === "true") throw new Error(`CI needs Go and x/mod: ${how}`);
  console.warn(`skipping the Go tlog interop test: ${how}`);
  return false;
}
const haveGo = goAvailable();
const s3 = needService("s3", S3_KEYS);

const dir = mkdtempSync(join(tmpdir(), "vellum-go-tlog-"));
const bin = join(dir, "go-tlog");
let server: VellumProcess;
let token: string;
let logKey: string;
let accessKey: string;
const proxies: Server[] = [];

afterAll(async () => {
  for (const p of proxies) p.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the Go client (asynchronously: the tampering proxy lives in this process). */
function goTlog(
  url: string,
  vkey: string,
  ...more: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(bin, ["-url", url, "-vkey", vkey, ...more], { timeout: 60_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Forwards to the server, changing one byte of each answer whose path `alter` picks. */
function proxy(alter: (path: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const p = createServer(async (req, res) => {
      const upstream = await fetch(`${server.url}${req.url}`, {
        headers: req.headers.authorization ? { Authorization: req.headers.authorization } : {},
      });
      const body = new Uint8Array(await upstream.arrayBuffer());
      if (upstream.status === 200 && alter(req.url ?? "") && body.length > 40) body[40]! ^= 1;
      res.writeHead(upstream.status, { "Content-Type": "application/octet-stream" });
      res.end(body);
    });
    proxies.push(p);
    p.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(p.address() as { port: number }).port}`),
    );
  });
}

async function until(what: string, predicate: () => Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!haveGo)("Go's sumdb/tlog reading Vellum's tlog-tiles", () => {
  beforeAll(async () => {
    execFileSync("go", ["build", "-o", bin, "."], {
      cwd: SOURCE,
      env: { ...process.env, GO111MODULE: "off", GOPATH, GOFLAGS: "" },
      stdio: "pipe",
    });
    const data = join(dir, "data");
    server = await startVellum(
      ["serve", "--data", data, "--port", "0", "--host", "127.0.0.1", "--access-log"],
      "/readyz",
    );
    token = readFileSync(join(data, "admin.token"), "utf8").trim();
    logKey = readFileSync(join(data, "log.vkey"), "utf8").trim();
    accessKey = readFileSync(join(data, "access.vkey"), "utf8").trim();
    // 300 entries: a full bundle and a partial one, tiles on two levels' worth of hashes.
    const lines = join(dir, "events.jsonl");
    writeFileSync(
      lines,
      Array.from({ length: 300 }, (_, i) => `{"n":${i}}`)
        .join("\n")
        .concat("\n"),
    );
    const sub = runVellum(["submit", "--lines", lines, "--url", server.url, "--token", token]);
    expect(sub.code, sub.stderr).toBe(0);
    for (const i of [0, 7, 299]) {
      const res = await fetch(`${server.url}/v1/entries/${i}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
    }
  }, 120_000);

  it("verifies the log: signature, tiles, every entry's inclusion, consistency", async () => {
    const first = await goTlog(server.url, logKey, "-token", token);
    expect(first.code, first.stderr).toBe(0);
    const cp = JSON.parse(first.stdout) as { size: number; root: string };
    expect(cp.size).toBe(300);
    const more = join(dir, "more.jsonl");
    writeFileSync(more, Array.from({ length: 40 }, (_, i) => `{"m":${i}}\n`).join(""));
    expect(runVellum(["submit", "--lines", more, "--url", server.url, "--token", token]).code).toBe(
      0,
    );
    const later = await goTlog(
      server.url,
      logKey,
      ...["-token", token, "-old-size", String(cp.size), "-old-root", cp.root],
    );
    expect(later.code, later.stderr).toBe(0);
    expect(JSON.parse(later.stdout).size).toBe(340);
    // A root the log never had is refused by the consistency check.
    const wrongRoot = Buffer.alloc(32, 7).toString("base64");
    const forged = await goTlog(
      server.url,
      logKey,
      ...["-token", token, "-old-size", "300", "-old-root", wrongRoot],
    );
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/consistency proof from 300/);
  });

  it("verifies the access log under /access/ with its own key (bundles need the audit scope)", async () => {
    const r = await goTlog(`${server.url}/access`, accessKey, "-token", token);
    expect(r.code, r.stderr).toBe(0);
    const cp = JSON.parse(r.stdout) as { origin: string; size: number };
    expect(cp.origin).toMatch(/\/access$/);
    expect(cp.size).toBeGreaterThanOrEqual(3); // the three entry reads at least
    // The log's key does not open the access log's checkpoint.
    const wrongKey = await goTlog(`${server.url}/access`, logKey, "-token", token);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/checkpoint/);
    const anonymous = await goTlog(`${server.url}/access`, accessKey);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/HTTP 401/);
  });

  it("verifies both index logs (/index/, /access/index/; bundles public)", async () => {
    for (const [prefix, key] of [
      ["/index", indexLogVerifierKey(logKey)],
      ["/access/index", indexLogVerifierKey(accessKey)],
    ] as const) {
      // The index commits a revision about once a second while its log grows.
      await until(`${prefix} has revisions`, async () => {
        const note = await (await fetch(`${server.url}${prefix}/checkpoint`)).text();
        return Number(note.split("\n")[1]) >= 2;
      });
      const r = await goTlog(`${server.url}${prefix}`, key);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).origin).toBe(key.split("+")[0]);
    }
  });

  it("refuses a tile or an entry bundle altered by one byte", async () => {
    const badTile = await proxy((path) => path.startsWith("/tile/0/"));
    const t = await goTlog(badTile, logKey, "-token", token);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/go-tlog: .*(tile|hash)/i);
    const badBundle = await proxy((path) => path.startsWith("/tile/entries/"));
    const b = await goTlog(badBundle, logKey, "-token", token);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/entry \d+: its record hash is not the tree's leaf hash|bundle/);
    const badCheckpoint = await proxy((path) => path === "/checkpoint");
    const c = await goTlog(badCheckpoint, logKey, "-token", token);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/checkpoint/);
  });

  it.skipIf(s3 === undefined)(
    "walks a log from its WORM bucket alone: locked full tiles, the unlocked head",
    { timeout: 60_000 },
    async () => {
      const { log } = await openMemoryLog(new MemoryDatabase(), { batchMaxAgeMs: 0 });
      const enc = new TextEncoder();
      for (let i = 0; i < 700; i += 100) {
        await log.submitMany(Array.from({ length: 100 }, (_, j) => enc.encode(`walk ${i + j}`)));
      }
      const config = {
        endpoint: s3!.AWS_ENDPOINT_URL,
        region: s3!.AWS_REGION,
        forcePathStyle: true,
        credentials: {
          accessKeyId: s3!.AWS_ACCESS_KEY_ID!,
          secretAccessKey: s3!.AWS_SECRET_ACCESS_KEY!,
        },
      };
      const bucket = await WormBucket.open(
        `s3://${s3!.VELLUM_BUCKET}/go-walk/${randomUUID()}`,
        config,
      );
      try {
        const archiver = await Archiver.open({
          log,
          bucket,
          retention: parseRetention("1h"),
          kv: new MemoryDatabase().namespace("archive"),
        });
        await archiver.step();
        // The bucket over HTTP as it is (a CDN or the store's own endpoint would do the same):
        // nothing of the log's server is involved.
        const shim = createServer(async (req, res) => {
          const bytes = await bucket.getLatest((req.url ?? "/").slice(1)).catch(() => undefined);
          res.writeHead(bytes === undefined ? 404 : 200);
          res.end(bytes === undefined ? "not found" : Buffer.from(bytes));
        });
        proxies.push(shim);
        const url = await new Promise<string>((resolve) =>
          shim.listen(0, "127.0.0.1", () =>
            resolve(`http://127.0.0.1:${(shim.address() as { port: number }).port}`),
          ),
        );
        const walk = await goTlog(url, log.signer.verifierKey);
        expect(walk.code, walk.stderr).toBe(0);
        expect(JSON.parse(walk.stdout)).toMatchObject({ size: 700, entries: 700 });
      } finally {
        bucket.close();
        await log.close();
      }
    },
  );
});
