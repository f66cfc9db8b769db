/**
 * DATA/serve.pid (src/cli/data-lock.ts): one server per data directory when the log lives in
 * PostgreSQL. A live process's file refuses the start (LOCKED, naming the pid); a file left by a
 * killed process is taken over; one from another host is not (its process cannot be checked).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { lockDataDir } from "../../src/cli/data-lock.js";
import { isVellumError } from "../../src/core/errors.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-data-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pidFile = join(dir, "serve.pid");

function refusal(): { code: string; message: string } {
  try {
    lockDataDir(dir);
  } catch (e) {
    if (isVellumError(e)) return e;
    throw e;
  }
  throw new Error("expected LOCKED");
}

describe("the data directory's lock (PostgreSQL mode)", () => {
  it("is taken, refuses a second taker while held, and is given back", () => {
    const release = lockDataDir(dir);
    expect(readFileSync(pidFile, "utf8")).toBe(`${process.pid} ${hostname()}\n`);
    release();
    expect(existsSync(pidFile)).toBe(false);
  });

  it("refuses the start while the process that holds it runs", async () => {
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"]);
    try {
      writeFileSync(pidFile, `${child.pid} ${hostname()}\n`);
      const e = refusal();
      expect(e.code).toBe("LOCKED");
      expect(e.message).toContain(dir);
      expect(e.message).toContain(`pid ${child.pid}`);
    } finally {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
    // Killed: its file is stale and taken over.
    const release = lockDataDir(dir);
    expect(readFileSync(pidFile, "utf8")).toBe(`${process.pid} ${hostname()}\n`);
    release();
  });

  it("takes over a file left by a process that is gone, or one that is damaged", () => {
    const gone = spawnSync(process.execPath, ["-e", "process.pid"]).pid as number;
    writeFileSync(pidFile, `${gone} ${hostname()}\n`);
    lockDataDir(dir)();
    writeFileSync(pidFile, "not a pid file");
    lockDataDir(dir)();
    expect(existsSync(pidFile)).toBe(false);
  });

  it("does not take over another host's file, and says how to", () => {
    writeFileSync(pidFile, "4242 some-other-host\n");
    const e = refusal();
    expect(e.code).toBe("LOCKED");
    expect(e.message).toMatch(/on host some-other-host .*if that server is gone, delete the file/);
    rmSync(pidFile);
  });
});
