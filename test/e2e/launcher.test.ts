/**
 * bin/vellum.js as users start it: run as a program, its first two lines are a shell script that
 * re-runs the file under node with the server's V8 flags (SERVER_NODE_FLAGS), keeping the process
 * id so signals reach node; run by node, the same file is plain JavaScript. The flags are written
 * in four places (the launcher, `npm start`, `npm run bench:log`, the scripts that start servers
 * for benchmarks): this keeps them in step.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SERVER_NODE_FLAGS } from "../../scripts/lib/vellum-process.js";
import { REPO_ROOT, VELLUM_BIN } from "../helpers/cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("bin/vellum.js", () => {
  const launcher = readFileSync(VELLUM_BIN, "utf8").split("\n");

  it("names the server's node flags on its exec line, as npm start and bench:log do", () => {
    expect(launcher[0]).toBe("#!/bin/sh");
    const exec = /^":" \/\/; exec node (.*) "\$0" "\$@"$/.exec(launcher[1]!);
    expect(exec, launcher[1]).not.toBeNull();
    expect(exec![1]!.split(" ")).toEqual(SERVER_NODE_FLAGS);
    const scripts = (
      JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    for (const name of ["start", "bench:log"]) {
      expect(scripts[name]!.split(" ").slice(1, 1 + SERVER_NODE_FLAGS.length), name).toEqual(
        SERVER_NODE_FLAGS,
      );
    }
  });

  it("runs as a program and under node alike", () => {
    const version = (
      JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }
    ).version;
    for (const [file, args] of [
      [VELLUM_BIN, ["--version"]],
      [process.execPath, [VELLUM_BIN, "--version"]],
    ] as const) {
      const r = spawnSync(file, args, { encoding: "utf8", timeout: 30_000 });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
    // A usage error's exit code comes through the shell's exec unchanged.
    const bad = spawnSync(VELLUM_BIN, ["no-such-command"], { encoding: "utf8", timeout: 30_000 });
    expect(bad.status).toBe(2);
  });

  it.skipIf(!existsSync("/proc/self/cmdline"))(
    "serves as node with the flags, under the process id it was started as, and stops on SIGTERM",
    async () => {
      const data = mkdtempSync(join(tmpdir(), "vellum-launcher-"));
      dirs.push(data);
      const child = spawn(VELLUM_BIN, ["serve", "--data", data, "--port", "0"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, NO_COLOR: "1" },
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
      let out = "";
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
      });
      try {
        for (let i = 0; i < 600 && !out.includes("serving on http://"); i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
        expect(out).toContain("serving on http://");
        const argv = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0");
        expect(argv[0]).toBe("node");
        expect(argv.slice(1, 1 + SERVER_NODE_FLAGS.length)).toEqual(SERVER_NODE_FLAGS);
        expect(argv).toContain("serve");
        child.kill("SIGTERM");
        expect(await exited).toBe(0);
      } finally {
        child.kill("SIGKILL");
      }
    },
  );
});
