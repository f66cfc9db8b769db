/**
 * `vellum serve --archive s3://… --retention …` against radosgw with Object Lock, and
 * `vellum archive check` reading the result from the bucket alone: real processes, real S3 on
 * 127.0.0.1 (`scripts/services.sh up s3`).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runVellum } from "../helpers/cli.js";
import { startVellum } from "../helpers/processes.js";
import { needService, S3_KEYS } from "../helpers/services.js";

const env = needService("s3", S3_KEYS);
// The server and the CLI find the endpoint and credentials the way AWS tools do.
if (env !== undefined) Object.assign(process.env, env);
const dir = mkdtempSync(join(tmpdir(), "vellum-archive-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(env === undefined)("vellum serve --archive", () => {
  it("archives the log into a locked bucket, and vellum archive check proves it whole", {
    timeout: 120_000,
  }, async () => {
    const data = join(dir, "data");
    const url = `s3://${env!.VELLUM_BUCKET}/e2e/${randomUUID()}`;
    const noRetention = runVellum(["serve", "--data", data, "--archive", url]);
    expect(noRetention.code).toBe(2);
    expect(noRetention.stderr).toMatch(/--archive needs --retention/);

    const server = await startVellum(
      ["serve", "--data", data, "--port", "0", "--archive", url, "--retention", "1h"],
      "/readyz",
    );
    expect(server.output()).toMatch(/archiving full tiles, bundles and checkpoints to s3:/);
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const lines = join(dir, "lines.jsonl");
    writeFileSync(lines, Array.from({ length: 600 }, (_, i) => `{"n":${i}}\n`).join(""));
    const sub = runVellum(["submit", "--lines", lines, "--url", server.url, "--token", token]);
    expect(sub.code, sub.stderr).toBe(0);
    // The archive catches up within seconds (the metric says how far behind it is).
    let lag = "";
    for (let i = 0; i < 100; i++) {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      lag = /^vellum_archive_lag_entries (\d+)$/m.exec(metrics)?.[1] ?? "";
      if (lag === "0") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(lag).toBe("0");
    expect((await server.stop()).code).toBe(0);

    const vkey = join(data, "log.vkey");
    const ok = runVellum(["archive", "check", url, "--key", vkey, "--retention", "1h"]);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(
      /^OK: \d+ objects, 2 bundles \(512 entries\), 2 tiles, \d+ checkpoints up to size 600/m,
    );
    // Objects locked for less than asked: each is a problem, exit 3.
    const longer = runVellum(["archive", "check", url, "--key", vkey, "--retention", "2h"]);
    expect(longer.code).toBe(3);
    expect(longer.stdout).toMatch(/^PROBLEM .* retained until .* less than 2h/m);
    // Another log's key: every checkpoint refused.
    const other = runVellum(["keygen", "--name", "other.example/log"]);
    const wrong = runVellum([
      "archive",
      "check",
      url,
      "--key",
      other.stdout.trim(),
      "--retention",
      "1h",
    ]);
    expect(wrong.code).toBe(3);
    expect(wrong.stdout).toMatch(/^PROBLEM .*checkpoints\//m);

    // vellum fsck checks the data directory and its archive together.
    const fsck = runVellum(["fsck", "--data", data, "--archive", url, "--retention", "1h"]);
    expect(fsck.code, fsck.stderr + fsck.stdout).toBe(0);
    expect(fsck.stdout).toMatch(/tree size 600/);
    expect(fsck.stdout).toMatch(/^archive clean: no problems found$/m);
    const fsckLonger = runVellum(["fsck", "--data", data, "--archive", url, "--retention", "2h"]);
    expect(fsckLonger.code).toBe(1);
    expect(fsckLonger.stdout).toMatch(/^problem: archive: .* retained until .* less than 2h/m);
    const fsckNoRetention = runVellum(["fsck", "--data", data, "--archive", url]);
    expect(fsckNoRetention.code).toBe(2);
    expect(fsckNoRetention.stderr).toMatch(/--archive needs --retention/);
  });
});
