/**
 * The distributed setup's settings refused before anything is touched, with no service needed:
 * `--bucket` (the distributed name of `--archive`) with `--archive` too, or without `--retention`;
 * `vellum fsck --store` on a database that cannot be reached (exit 2: the check could not run),
 * and its `--archive` without `--retention`.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runVellum } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-distributed-flags-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const UNREACHABLE = "postgres://vellum@127.0.0.1:1/vellum";

describe("the distributed setup's flags", () => {
  it("--bucket with --archive, or without --retention, is a usage error and creates nothing", () => {
    const data = join(dir, "serve");
    const both = runVellum([
      ...["serve", "--data", data, "--port", "0"],
      ...["--bucket", "s3://b/p", "--archive", "s3://b/p", "--retention", "1d"],
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--bucket is another name for --archive: give one of them/);
    const noRetention = runVellum(["serve", "--data", data, "--port", "0", "--bucket", "s3://b/p"]);
    expect(noRetention.code).toBe(2);
    expect(noRetention.stderr).toMatch(/--bucket needs --retention/);
    expect(existsSync(data)).toBe(false);
  });

  it("--bucket is read from VELLUM_BUCKET_URL, not VELLUM_BUCKET (a bucket's bare name)", () => {
    const data = join(dir, "env");
    const r = runVellum(["serve", "--data", data, "--port", "0"], {
      env: { VELLUM_BUCKET_URL: "s3://b/p", VELLUM_BUCKET: "just-a-name" },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--bucket needs --retention/);
  });

  it("fsck --store exits 2 when the database cannot be reached, without its password", () => {
    const data = join(dir, "fsck");
    const key = runVellum(["keygen", "--name", "flags.test/log"]);
    expect(key.code, key.stderr).toBe(0);
    rmSync(data, { recursive: true, force: true });
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, "log.vkey"), `${key.stdout.trim()}\n`);
    const r = runVellum([
      "fsck",
      "--data",
      data,
      "--store",
      UNREACHABLE.replace("vellum@", "vellum:secret@"),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PostgreSQL at 127\.0\.0\.1:1\/vellum/);
    expect(r.stderr).not.toMatch(/secret/);
    const noRetention = runVellum([
      "fsck",
      "--data",
      data,
      "--store",
      UNREACHABLE,
      "--archive",
      "s3://b/p",
    ]);
    expect(noRetention.code).toBe(2);
    expect(noRetention.stderr).toMatch(/--archive needs --retention/);
  });
});
