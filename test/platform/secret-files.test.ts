/**
 * Secrets reach the disk one way (src/platform/durable-file.ts): mode 0600 whatever the umask,
 * a key never written over an existing file, the admin token replaced atomically — and the CLI
 * paths that write them (serve's keys and admin token, `keygen --out`) go through it.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  createSecretFile,
  replaceSecretFile,
  writeFileDurably,
} from "../../src/platform/durable-file.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Runs `fn` under a umask that would leave a plain new file world-readable. */
function underPermissiveUmask<T>(fn: () => T): T {
  const previous = process.umask(0);
  try {
    return fn();
  } finally {
    process.umask(previous);
  }
}

describe("secret files", () => {
  it("creates a key with mode 0600 even under umask 0, and refuses to overwrite one", () => {
    const path = join(dir, "log.key");
    underPermissiveUmask(() => createSecretFile(path, "PRIVATE+KEY+one\n"));
    expect(modeOf(path)).toBe(0o600);
    expect(() => createSecretFile(path, "PRIVATE+KEY+two\n")).toThrowError(
      expect.objectContaining({ code: "EEXIST" }),
    );
    expect(readFileSync(path, "utf8")).toBe("PRIVATE+KEY+one\n");
  });

  it("replaces the admin token atomically with mode 0600, over a file that was readable", () => {
    const path = join(dir, "admin.token");
    writeFileSync(path, "old\n", { mode: 0o644 });
    underPermissiveUmask(() => replaceSecretFile(path, "vellum_new\n"));
    expect(readFileSync(path, "utf8")).toBe("vellum_new\n");
    expect(modeOf(path)).toBe(0o600);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("writes ordinary durable files with the mode asked, replacing a stale temp file", () => {
    const path = join(dir, "checkpoint");
    writeFileSync(`${path}.tmp-${process.pid}`, "left by a crash");
    writeFileDurably(path, "note\n", 0o644);
    expect(readFileSync(path, "utf8")).toBe("note\n");
    expect(modeOf(path)).toBe(0o644);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });
});
