/**
 * Real `vellum` processes (bin/vellum.js over the built dist/): start one (`serve`, `witness`, …)
 * on a port the OS picks and wait until it prints its URL and answers. No test framework here, so
 * scripts (scripts/torture.ts) use it as the tests do (test/helpers/processes.ts adds the hook
 * that kills leftovers after a test file). `killAllVellum()` SIGKILLs every process still running.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const VELLUM_BIN = fileURLToPath(new URL("../../bin/vellum.js", import.meta.url));

/**
 * The node flags `vellum` runs with when started as a program (bin/vellum.js's second line; `npm
 * start` and `npm run bench:log` pass the same): V8's young generation at 64 MiB a half. Processes
 * started here run `node bin/vellum.js`, which skips that line, so they pass these themselves: a
 * benchmark measures the server as users run it. test/e2e/launcher.test.ts keeps the places in
 * step.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=64"];

export interface VellumProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr as they arrived. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<unknown>;
}

const children = new Set<ChildProcess>();

/** SIGKILLs every `vellum` process started here that is still running. */
export function killAllVellum(): void {
  for (const c of children) c.kill("SIGKILL");
}

/** Spawns `vellum <args>` without waiting for anything; `exited` settles when it ends. */
export function spawnVellum(
  args: string[],
  options: { env?: Record<string, string> } = {},
): Omit<VellumProcess, "url"> {
  // VELLUM_NODE_ARGS: node flags for every process started here, e.g. "--cpu-prof
  // --cpu-prof-dir=/tmp/prof" to profile a benchmark's servers (NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = (process.env.VELLUM_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...nodeArgs, VELLUM_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    stdout += s;
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    out += s;
    stderr += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    exited,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
    kill: () => {
      child.kill("SIGKILL");
      return exited;
    },
  };
}

/**
 * Starts `vellum <args>` (add `--port 0`) and resolves once it has printed
 * "serving on http://127.0.0.1:PORT" and `readyPath` answers 200.
 */
export async function startVellum(
  args: string[],
  readyPath = "/healthz",
  timeoutMs = 20_000,
): Promise<VellumProcess> {
  const p = spawnVellum(args);
  let done = false;
  void p.exited.then(() => {
    done = true;
  });
  const deadline = Date.now() + timeoutMs;
  const URL_RE = /serving on (http:\/\/127\.0\.0\.1:\d+)/;
  let url: string | undefined;
  while (
    url === undefined ||
    (await fetch(`${url}${readyPath}`).catch(() => undefined))?.status !== 200
  ) {
    if (done) throw new Error(`vellum ${args[0]} exited at start:\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`vellum ${args[0]} did not start:\n${p.output()}`);
    url ??= URL_RE.exec(p.stdout())?.[1];
    await new Promise((r) => setTimeout(r, 25));
  }
  return { ...p, url };
}
