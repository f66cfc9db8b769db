/** The data directory: created with a private key (0600) and a verifier key; checked on reuse. */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { defaultOrigin, openDataDir } from "../../src/cli/datadir.js";
import { parseVerifierKey, signerFromSeed } from "../../src/core/keys.js";
import { runVellum } from "../helpers/cli.js";

const fresh = () => join(mkdtempSync(join(tmpdir(), "vellum-data-")), "data");

describe("data directory", () => {
  it("creates the key with mode 0600 and log.vkey on one line", () => {
    const dir = fresh();
    const files = openDataDir(dir, { origin: "audit.example/prod" });
    expect(files.created).toBe(true);
    expect(statSync(join(dir, "log.key")).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const vkey = readFileSync(join(dir, "log.vkey"), "utf8");
    expect(vkey.endsWith("\n")).toBe(true);
    expect(vkey.trim().split("\n")).toHaveLength(1);
    expect(parseVerifierKey(vkey.trim()).name).toBe("audit.example/prod");
    expect(signerFromSeed(files.origin, files.seed).verifierKey).toBe(vkey.trim());
    expect(readFileSync(join(dir, "log.key"), "utf8")).toMatch(
      /^PRIVATE\+KEY\+audit\.example\/prod\+/,
    );
  });

  it("reopens with the same key and origin, and refuses another origin", () => {
    const dir = fresh();
    const first = openDataDir(dir);
    expect(first.origin).toBe(defaultOrigin());
    const again = openDataDir(dir);
    expect(again.created).toBe(false);
    expect(again.seed).toEqual(first.seed);
    expect(() => openDataDir(dir, { origin: "other.example/log" })).toThrowError(
      expect.objectContaining({ code: "STATE_MISMATCH" }),
    );
  });

  it("refuses a key file others can read", () => {
    const dir = fresh();
    openDataDir(dir);
    chmodSync(join(dir, "log.key"), 0o644);
    expect(() => openDataDir(dir)).toThrowError(/chmod 600/);
  });

  it("makes a pre-existing directory open to others private, warning with its old mode", () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755); // whatever the umask
    const warnings: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: string) => {
      warnings.push(line);
    });
    try {
      openDataDir(dir);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(warnings).toEqual([
        `vellum: warning: ${dir} had mode 0755 (open to group or others); changed it to 0700`,
      ]);
      openDataDir(dir); // nothing more to say
      expect(warnings).toHaveLength(1);
    } finally {
      spy.mockRestore();
    }
  });

  it("refuses origins that cannot name a key", () => {
    for (const origin of ["has space", "a+b", "", "cosignature/v1"]) {
      expect(() => openDataDir(fresh(), { origin })).toThrowError(
        expect.objectContaining({ code: "MALFORMED" }),
      );
    }
  });
});

describe("vellum serve options", () => {
  it("refuses a --cache-mb outside 16..65536 before serving, naming the option", () => {
    for (const bad of ["1", "abc", "100000"]) {
      const r = runVellum(["serve", "--data", fresh(), "--port", "0", "--cache-mb", bad]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/--cache-mb/);
      expect(r.stdout).not.toMatch(/serving on/);
    }
  });

  it("refuses a --body-budget-mb below one largest batch (16) and a bad --bundle-cache-mb", () => {
    for (const args of [
      ["--body-budget-mb", "15"],
      ["--bundle-cache-mb", "-1"],
    ]) {
      const r = runVellum(["serve", "--data", fresh(), "--port", "0", ...args]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toContain(args[0]);
      expect(r.stdout).not.toMatch(/serving on/);
    }
  });
});
