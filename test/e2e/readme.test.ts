/**
 * The README, as a newcomer runs it: every shell command it shows (```sh, ```bash, ```shell and
 * ```console blocks, found by test/helpers/readme-commands.ts, so a new block is picked up without
 * touching this file) runs as written, in order, in one bash session — so `cd`, `export`, `$!`,
 * `kill %1` and files made by one command carry to the next, as in a terminal. Each must exit 0,
 * or the status the README gives it in a trailing comment (`# exits 3`), within its time limit.
 *
 * The session's working directory is a fresh "clone": a temporary directory holding a link to
 * every top-level file of this repository that git tracks, plus `node_modules` and `dist` (what
 * `npm ci` adds), so `npm start`, `npx vellum …` and the README's relative paths (`vellum-data/`,
 * `test/known-answers/…`) mean what they mean in a checkout; nothing the commands write lands in
 * the repo. A README command may not reach outside the repository (a user's clone has nothing
 * beside it): the test refuses `../` paths.
 * A command ending in `&` runs in the background and the next waits until it says
 * "serving on http://…" and answers /readyz (or /healthz).
 *
 * For README writers: a command meant to be typed goes in a block (commands in prose are
 * references, often with placeholders, and are not run); a server goes in the background with
 * `&` and is stopped with `kill %1 && wait` where a later command needs it stopped; a command
 * that cannot run here goes in NOT_RUN with its reason.
 *
 * What differs from a terminal, each said once here and in REWRITES / NOT_RUN below:
 * - `npm ci` is dropped (a fresh install), and npm runs with ignore-scripts and offline, so
 *   `npm start` runs its script without `prestart`'s rebuild (`npm test` built dist/ already)
 *   and `npx` never asks the registry;
 * - the log's port 6962 becomes a free port: VELLUM_PORT and VELLUM_URL (settings the README
 *   lists) carry it, and `127.0.0.1:6962` in commands is rewritten, so this test never meets
 *   another server on the machine.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { type ShownCommand, shellCommands, splitComment } from "../helpers/readme-commands.js";

const README = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
const COMMANDS = shellCommands(README);
const COMMAND_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 30_000;
const LOG_PORT = 6962;

/**
 * Commands the README shows that this test does not run, and why. Matched against the command
 * without its comment; each must still be in the README (checked below), so the list stays true.
 */
const NOT_RUN: readonly { command: string; reason: string }[] = [
  {
    command: "npm ci && npm start",
    reason:
      "the server in the foreground, until Ctrl-C; the integrator section starts the same server in the background, and that one runs here",
  },
  {
    command: "npm ci && npm test",
    reason: "the whole test suite, this test included (CI runs it)",
  },
  {
    command:
      "npx vellum serve --store postgres://vellum@db.internal:5432/vellum --origin audit.example.com/log &",
    reason:
      "needs a PostgreSQL server; test/e2e/postgres.test.ts runs vellum serve --store against a real one",
  },
  {
    command:
      "npx vellum serve --store postgres://vellum@db.internal:5432/vellum --origin audit.example.com/log \\\n  --bucket s3://audit-worm/prod --retention 7y &",
    reason:
      "needs PostgreSQL and an S3 bucket with Object Lock; test/e2e/front-ends.test.ts runs two such servers against real ones",
  },
  {
    command:
      "npx vellum fsck --data vellum-data --store postgres://vellum@db.internal:5432/vellum \\\n  --archive s3://audit-worm/prod --retention 7y",
    reason:
      "needs PostgreSQL and the bucket; test/e2e/front-ends.test.ts runs the same check against real ones",
  },
  {
    command: "npx vellum serve --archive s3://audit-worm/prod --retention 7y &",
    reason:
      "needs an S3 bucket with Object Lock; test/e2e/archive.test.ts runs the same commands against radosgw",
  },
  {
    command:
      "npx vellum archive check s3://audit-worm/prod --key vellum-data/log.vkey --retention 7y",
    reason: "the archive's check, run against radosgw by test/e2e/archive.test.ts",
  },
  {
    command: "npm pack",
    reason:
      "this test's clone is a farm of symlinks, which npm pack does not follow; test/e2e/pack.test.ts packs the real checkout",
  },
];

/** Rewrites applied to every command before it runs, and why. */
const REWRITES: readonly { from: RegExp; to: (port: number) => string; reason: string }[] = [
  {
    from: /^npm ci && /,
    to: () => "",
    reason:
      "npm ci installs a fresh clone; this clone is linked to a checkout already installed and built",
  },
  {
    from: new RegExp(`\\b(127\\.0\\.0\\.1|localhost):${LOG_PORT}\\b`, "g"),
    to: (port) => `127.0.0.1:${port}`,
    reason: "the log listens on a free port (VELLUM_PORT), not on 6962, which may be taken",
  },
  {
    from: new RegExp(`--port[ =]${LOG_PORT}\\b`, "g"),
    to: (port) => `--port ${port}`,
    reason: "the same port, where a command names it with --port",
  },
];

/** Why a command cannot run on this machine, or undefined. */
function unavailable(c: ShownCommand): string | undefined {
  const skip = NOT_RUN.find((n) => n.command === c.bare);
  if (skip !== undefined) return skip.reason;
  return undefined;
}

/** The top-level entries of a fresh clone after `npm ci`: what git tracks, node_modules, dist. */
function cloneEntries(): string[] {
  let tracked: string[];
  try {
    tracked = execFileSync("git", ["ls-tree", "--name-only", "HEAD"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    })
      .split("\n")
      .filter((n) => n !== "");
  } catch {
    tracked = readdirSync(REPO_ROOT).filter((n) => !n.startsWith(".") && n !== "vellum-data");
  }
  return [...new Set([...tracked, "node_modules", "dist"])].filter((n) =>
    existsSync(join(REPO_ROOT, n)),
  );
}

/** One bash session: commands written to its stdin, each followed by a marker on fd 3. */
class Session {
  private readonly shell: ChildProcess;
  private output = "";
  private markers: string[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(cwd: string, env: NodeJS.ProcessEnv) {
    // Its own process group, so the end of the test stops everything it started, and only that.
    this.shell = spawn("bash", ["--noprofile", "--norc"], {
      cwd,
      env,
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      detached: true,
    });
    const collect = (s: string) => {
      this.output += s;
      this.wake?.();
    };
    this.shell.stdout!.setEncoding("utf8").on("data", collect);
    this.shell.stderr!.setEncoding("utf8").on("data", collect);
    let pending = "";
    (this.shell.stdio[3] as NodeJS.ReadableStream).setEncoding("utf8");
    (this.shell.stdio[3] as NodeJS.ReadableStream).on("data", (s: string) => {
      pending += s;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      this.markers.push(...lines);
      this.wake?.();
    });
    this.shell.on("exit", () => {
      this.ended = true;
      this.wake?.();
    });
    // Job control, as in a terminal: a background job is a process group of its own, so
    // `kill %1` stops the whole job (npm and the server it started), not only its first process.
    this.shell.stdin!.write("set -m\n");
  }

  /** Output since `from` (stdout and stderr as they arrived, background jobs included). */
  outputSince(from: number): string {
    return this.output.slice(from);
  }

  get outputLength(): number {
    return this.output.length;
  }

  private changed(ms: number): Promise<void> {
    return new Promise((done) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        done();
      }
      this.wake = finish;
    });
  }

  /** Runs `text` (its stdin /dev/null, as in a script) and resolves to its exit status. */
  async run(text: string, timeoutMs: number): Promise<number> {
    if (this.ended) throw new Error("the shell has ended (an earlier command ended it)");
    this.markers = [];
    this.shell.stdin!.write(`{ ${text}\n} </dev/null 3>&-\necho "done $?" >&3\n`);
    const deadline = Date.now() + timeoutMs;
    while (this.markers.length === 0) {
      if (this.ended) throw new Error("the shell ended while the command ran");
      if (Date.now() > deadline) {
        this.stop("SIGKILL");
        throw new Error(`no end after ${timeoutMs} ms (the session was stopped)`);
      }
      await this.changed(Math.max(1, deadline - Date.now()));
    }
    return Number(/^done (\d+)$/.exec(this.markers[0]!)?.[1] ?? Number.NaN);
  }

  /** Waits until output since `from` names a URL ("serving on http://…") that answers. */
  async ready(from: number, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const url = /serving on (http:\/\/[\w.:[\]-]+)/.exec(this.outputSince(from))?.[1];
      if (url !== undefined) {
        for (const path of ["/readyz", "/healthz"]) {
          const res = await fetch(`${url}${path}`).catch(() => undefined);
          await res?.body?.cancel();
          if (res?.status === 200) return url;
        }
      }
      if (this.ended) throw new Error("the shell ended");
      if (Date.now() > deadline) throw new Error(`nothing served within ${timeoutMs} ms`);
      await this.changed(50);
    }
  }

  /**
   * Signals the session (the shell is its leader, `detached`): the shell's process group and,
   * with job control, every job's own group in the same session.
   */
  stop(signal: NodeJS.Signals): void {
    try {
      execFileSync("pkill", [`-${signal}`, "-s", String(this.shell.pid!)], { stdio: "ignore" });
    } catch {
      // none left, or no pkill: the shell's own group below
    }
    try {
      process.kill(-this.shell.pid!, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM to the group (servers drain and stop), then SIGKILL to whatever is left. */
  async close(): Promise<void> {
    this.stop("SIGTERM");
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        execFileSync("pgrep", ["-s", String(this.shell.pid!)], { stdio: "ignore" });
      } catch {
        return; // no process of the session is left
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.stop("SIGKILL");
  }
}

describe("README.md, every shell command as written", () => {
  const tmp = mkdtempSync(join(tmpdir(), "vellum-readme-"));
  const clone = join(tmp, "vellum");
  let session: Session;
  let port: number;

  beforeAll(async () => {
    mkdirSync(clone);
    for (const name of cloneEntries()) symlinkSync(join(REPO_ROOT, name), join(clone, name));
    port = await freePort();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith("VELLUM_") && !k.startsWith("npm_")) env[k] = v;
    }
    Object.assign(env, {
      VELLUM_PORT: String(port),
      VELLUM_URL: `http://127.0.0.1:${port}`,
      NO_COLOR: "1",
      npm_config_ignore_scripts: "true",
      npm_config_offline: "true",
      npm_config_update_notifier: "false",
      npm_config_fund: "false",
      npm_config_audit: "false",
    });
    session = new Session(clone, env);
  });

  afterAll(async () => {
    await session?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("shows commands, and every command on the not-run list is one of them", () => {
    expect(COMMANDS.length).toBeGreaterThanOrEqual(8);
    expect(COMMANDS.some((c) => c.background)).toBe(true);
    // A user's clone has nothing beside it: no command may read outside the repository.
    expect(COMMANDS.filter((c) => /(^|[\s=])\.\.\//.test(c.bare)).map((c) => c.bare)).toEqual([]);
    for (const n of NOT_RUN) {
      expect(
        COMMANDS.map((c) => c.bare),
        `NOT_RUN names "${n.command}", which the README no longer shows`,
      ).toContain(n.command);
    }
  });

  for (const c of COMMANDS) {
    const title = `README.md:${c.line}: ${c.bare.split("\n")[0]}`;
    const reason = unavailable(c);
    if (reason !== undefined) {
      it.skip(`${title} — not run: ${reason}`, () => {});
      continue;
    }
    it(
      title,
      async () => {
        let text = c.text;
        for (const r of REWRITES) text = text.replace(r.from, r.to(port));
        const from = session.outputLength;
        const code = await session.run(text, COMMAND_TIMEOUT_MS).catch((e: Error) => {
          throw new Error(`${c.text}\n${e.message}\n${session.outputSince(from)}`);
        });
        expect(code, `${text}\nexited ${code}:\n${session.outputSince(from)}`).toBe(c.exitCode);
        if (c.background) {
          await session.ready(from, READY_TIMEOUT_MS).catch((e: Error) => {
            throw new Error(`${text}\n${e.message}:\n${session.outputSince(from)}`);
          });
        }
      },
      COMMAND_TIMEOUT_MS + READY_TIMEOUT_MS + 5_000,
    );
  }
});

describe("the session runs commands as a terminal would", () => {
  const dir = mkdtempSync(join(tmpdir(), "vellum-readme-session-"));
  let session: Session;
  beforeAll(() => {
    session = new Session(dir, { ...process.env });
  });
  afterAll(async () => {
    await session.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("carries cd and variables over, takes here-documents, reports each exit status", async () => {
    expect(await session.run("mkdir sub && cd sub && export GREETING=hi", 10_000)).toBe(0);
    const note = `cat > note.txt <<'EOF'\n$GREETING # kept as written\nEOF`;
    expect(await session.run(note, 10_000)).toBe(0);
    expect(readFileSync(join(dir, "sub", "note.txt"), "utf8")).toBe(
      "$GREETING # kept as written\n",
    );
    expect(
      await session.run('test "$GREETING" = hi && test "$(basename "$PWD")" = sub', 10_000),
    ).toBe(0);
    expect(await session.run("(exit 3)", 10_000)).toBe(3);
    // A command reading standard input gets end-of-file, not the commands after it.
    expect(await session.run("cat > stdin.txt", 10_000)).toBe(0);
    expect(readFileSync(join(dir, "sub", "stdin.txt"), "utf8")).toBe("");
  });

  it("a background server is waited for, and `kill %1 && wait` stops it", async () => {
    const from = session.outputLength;
    const server =
      "node -e \"require('node:http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', " +
      "function () { console.log('serving on http://127.0.0.1:' + this.address().port) })\" &";
    expect(await session.run(server, 10_000)).toBe(0);
    const url = await session.ready(from, 10_000);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await session.run("kill %1 && wait", 10_000)).toBe(0);
    await expect(fetch(url)).rejects.toThrow();
  });

  it("a command that does not end in time fails, naming its limit", async () => {
    await expect(session.run("sleep 30", 300)).rejects.toThrow(/no end after 300 ms/);
  });
});

describe("shellCommands: what counts as a command the README shows", () => {
  const md = [
    "# Title", // 1
    "```sh", // 2
    "npm ci && npm start &   # a log", // 3
    "# a comment line, not a command", // 4
    "", // 5
    "npx vellum monitor --url http://127.0.0.1:6962 \\", // 6
    "  --key vellum-data/log.vkey --once   # exits 3", // 7
    "echo 'a # not a comment' && true", // 8
    "cat > policy.txt <<'EOF'", // 9
    "log example.com/log+01234567+AAAA", // 10
    "EOF", // 11
    "```", // 12
    "```ts", // 13
    "const x = 1;", // 14
    "```", // 15
    "```console", // 16
    "$ npx vellum inspect", // 17
    "log       vm/vellum (open)", // 18
    "```", // 19
    "```", // 20
    "src/   not a shell block", // 21
    "```", // 22
  ].join("\n");

  it("finds each command with its line, background flag, said exit status and heredoc", () => {
    const got = shellCommands(md);
    expect(got.map((c) => [c.line, c.bare, c.background, c.exitCode])).toEqual([
      [3, "npm ci && npm start &", true, 0],
      [
        6,
        "npx vellum monitor --url http://127.0.0.1:6962 \\\n  --key vellum-data/log.vkey --once",
        false,
        3,
      ],
      [8, "echo 'a # not a comment' && true", false, 0],
      [9, "cat > policy.txt <<'EOF'\nlog example.com/log+01234567+AAAA\nEOF", false, 0],
      [17, "npx vellum inspect", false, 0],
    ]);
    expect(got[1]!.text).toContain("# exits 3");
  });

  it("splits a trailing comment only outside quotes", () => {
    expect(splitComment(`echo "#x" '#y' a#b # c`)).toEqual({
      code: `echo "#x" '#y' a#b`,
      comment: "c",
    });
    expect(splitComment("a && b &")).toEqual({ code: "a && b &", comment: "" });
  });
});
