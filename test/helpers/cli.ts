/** Runs the real `vellum` command (bin/vellum.js over the built dist/) as a child process. */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const VELLUM_BIN = fileURLToPath(new URL("../../bin/vellum.js", import.meta.url));

export function runVellum(
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
) {
  const r = spawnSync(process.execPath, [VELLUM_BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    encoding: "utf8",
    input: options.input,
    timeout: options.timeoutMs ?? 60_000,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
