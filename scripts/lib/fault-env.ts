/**
 * Real faults for the fault suite (test/faults/) and `npm run torture` (scripts/torture.ts): a
 * small tmpfs that fills up, `strace -e inject=` on a running process, bytes flipped in files.
 * Nothing here is a double: a full tmpfs returns ENOSPC from the kernel, strace makes the kernel
 * fail the chosen system calls of the chosen files, a flipped byte is on the file system.
 *
 * Each needs something the machine may not give: root (mount, ptrace of any process), the
 * `strace` binary. `missingTools` says what is missing; the tests skip on a developer's machine
 * and fail under CI=true (scripts/ci-fault-tools.sh installs strace there).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

export type Tool = "root" | "tmpfs" | "strace";

let mountable: boolean | undefined;

/** Which of `tools` this machine lacks, each with the reason (empty: everything is there). */
export function missingTools(tools: readonly Tool[]): string[] {
  const missing: string[] = [];
  const root = process.getuid?.() === 0;
  for (const tool of tools) {
    if (tool === "root" && !root) missing.push("root (uid 0) is needed");
    if (tool === "tmpfs") {
      if (!root) missing.push("mounting a tmpfs needs root");
      else if (!canMountTmpfs()) missing.push("`mount -t tmpfs` failed (no CAP_SYS_ADMIN?)");
    }
    if (tool === "strace") {
      const r = spawnSync("strace", ["-V"], { encoding: "utf8" });
      if (r.error !== undefined || r.status !== 0) missing.push("`strace` is not installed");
      else if (!root) missing.push("strace -p on another process needs root here");
    }
  }
  return missing;
}

function canMountTmpfs(): boolean {
  if (mountable !== undefined) return mountable;
  const dir = `/tmp/vellum-tmpfs-probe-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "pipe" });
    execFileSync("umount", [dir], { stdio: "pipe" });
    mountable = true;
  } catch {
    mountable = false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return mountable;
}

/**
 * A tmpfs of a few MiB: the data directory lives on it and fills up for real (ENOSPC from the
 * kernel). `fill` leaves only `leave` bytes free with a ballast file, `clear` deletes the ballast
 * (the operator freeing space), `resize` remounts it bigger (the operator adding space).
 */
export class Tmpfs {
  readonly dir: string;
  readonly #ballast: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.#ballast = join(dir, "ballast");
  }

  static mount(dir: string, bytes: number): Tmpfs {
    mkdirSync(dir, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes},mode=0700`, "tmpfs", dir], {
      stdio: "pipe",
    });
    return new Tmpfs(dir);
  }

  /** Bytes free (tmpfs reserves none for root). */
  free(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Writes a ballast file until at most `leave` bytes are free (or ENOSPC). Returns its size. */
  fill(leave: number): number {
    const fd = openSync(this.#ballast, "a");
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    let written = 0;
    try {
      for (let free = this.free(); free > leave; free = this.free()) {
        const n = Math.min(chunk.length, free - leave);
        written += writeSync(fd, chunk, 0, Math.max(n, 4096));
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    } finally {
      closeSync(fd);
    }
    return written;
  }

  /** Deletes the ballast: space comes back at once. */
  clear(): void {
    rmSync(this.#ballast, { force: true });
  }

  resize(bytes: number): void {
    execFileSync("mount", ["-o", `remount,size=${bytes}`, this.dir], { stdio: "pipe" });
  }

  unmount(): void {
    try {
      execFileSync("umount", ["-l", this.dir], { stdio: "pipe" });
    } catch {
      // already gone
    }
  }
}

export interface InjectOptions {
  /** The system call to fail: `write`, `fdatasync`, … */
  readonly syscall: string;
  /** The errno it returns: `ENOSPC`, `EIO`, …; or, with `delayMs` instead, none. */
  readonly error?: string;
  /**
   * Instead of failing it, hold each matching call this long before it runs (strace's
   * delay_enter): a stalled disk. The call then goes through, unless the process is killed first.
   */
  readonly delayMs?: number;
  /** Only calls on these files fail (strace -P; matched through the process's open fds). */
  readonly paths: readonly string[];
  /** The first matching call that fails (strace's when=N+); 1 = from the first. */
  readonly from?: number;
}

/** strace's inject= action for `o`: an error, or a delay in microseconds. */
function injected(o: InjectOptions): string {
  if ((o.error === undefined) === (o.delayMs === undefined)) {
    throw new Error("strace injection takes an error or a delay, one of them");
  }
  return o.error !== undefined
    ? `error=${o.error}`
    : `delay_enter=${Math.round(o.delayMs! * 1000)}`;
}

/**
 * `strace -f -p PID -e inject=SYSCALL:error=ERR:when=N+ -P PATH…` attached to a running process:
 * from the N-th matching call on, the kernel never runs the call and the process sees the error
 * (or, with a delay, the call is held that long first). `detach()` ends the fault (strace
 * detaches; the calls work again); `kill()` ends it at once. Counts what it injected.
 */
export class StraceInjector {
  readonly #child: ChildProcess;
  readonly #trace: string;
  readonly #exited: Promise<void>;
  readonly #delayed: boolean;
  #stderr = "";

  private constructor(child: ChildProcess, trace: string, delayed: boolean) {
    this.#child = child;
    this.#trace = trace;
    this.#delayed = delayed;
    this.#exited = new Promise((resolve) => child.on("exit", () => resolve()));
    child.stderr!.setEncoding("utf8").on("data", (s: string) => {
      this.#stderr += s;
    });
  }

  /** Attaches to every thread of `pid`; resolves once strace says it is attached. */
  static async attach(pid: number, o: InjectOptions, traceFile: string): Promise<StraceInjector> {
    if (o.paths.length === 0) throw new Error("strace injection needs at least one path");
    const args = [
      "-f",
      ...["-p", String(pid)],
      ...["-e", `trace=${o.syscall}`],
      ...["-e", `inject=${o.syscall}:${injected(o)}:when=${o.from ?? 1}+`],
      ...o.paths.flatMap((p) => ["-P", p]),
      ...["-o", traceFile],
    ];
    const child = spawn("strace", args, { stdio: ["ignore", "ignore", "pipe"] });
    const s = new StraceInjector(child, traceFile, o.delayMs !== undefined);
    const deadline = Date.now() + 10_000;
    while (!/attached/.test(s.#stderr)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`strace did not attach to ${pid}: ${s.#stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return s;
  }

  /**
   * Calls failed or held so far: lines strace marked "(INJECTED)", or for a delay, every call it
   * traced (a held call shows when it returns, "(DELAYED)", or as "<unfinished ...>" when the
   * process died while it was held).
   */
  injected(): number {
    let trace: string;
    try {
      trace = readFileSync(this.#trace, "utf8");
    } catch {
      return 0;
    }
    return this.#delayed
      ? trace.split("\n").filter((l) => /^\d+\s+\w+\(/.test(l)).length
      : trace.split("(INJECTED)").length - 1;
  }

  /**
   * Kills strace at once rather than letting it detach. For a held call (delayMs) of a process
   * just killed: strace keeps the held thread stopped until the delay ends, so the killed process
   * cannot finish exiting; when strace dies the kernel lets it go, and a call held at its entry
   * is not run by a thread that is being killed.
   */
  async kill(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGKILL");
    }
    await this.#exited;
  }

  /** Ends the fault: strace detaches from every thread and exits. */
  async detach(): Promise<void> {
    if (this.#child.exitCode === null) this.#child.kill("SIGINT");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** The LevelDB write-ahead logs (`NNNNNN.log`) in a database directory. */
export function walFiles(dbDir: string): string[] {
  return readdirSync(dbDir)
    .filter((f) => /^\d+\.log$/.test(f))
    .map((f) => join(dbDir, f));
}

/**
 * The write-ahead logs of a database directory now and after it is reopened: the current
 * `NNNNNN.log` files and the next `ahead` file numbers as `.log` (a reopened LevelDB starts a
 * fresh log under a new, larger file number). strace -P matches a path that does not exist yet,
 * so a fault on these lasts across reopens, as a full disk would, until strace detaches.
 */
export function walPathsAhead(dbDir: string, ahead = 200): string[] {
  let max = 0;
  for (const f of readdirSync(dbDir)) {
    const m = /^(?:MANIFEST-)?(\d+)(?:\.\w+)?$/.exec(f);
    if (m !== null) max = Math.max(max, Number(m[1]));
  }
  const next = Array.from({ length: ahead }, (_, i) =>
    join(dbDir, `${String(max + 1 + i).padStart(6, "0")}.log`),
  );
  return [...walFiles(dbDir), ...next];
}

/** The LevelDB tables (`NNNNNN.ldb`) in a database directory. */
export function tableFiles(dbDir: string): string[] {
  return readdirSync(dbDir)
    .filter((f) => /^\d+\.(ldb|sst)$/.test(f))
    .map((f) => join(dbDir, f));
}

/** Where `needle` occurs in `file` (every offset). */
export function findBytes(file: string, needle: Uint8Array): number[] {
  const data = readFileSync(file);
  const at: number[] = [];
  for (let i = data.indexOf(needle); i >= 0; i = data.indexOf(needle, i + 1)) at.push(i);
  return at;
}

/** Flips the bits of one byte of `file` in place (XOR 0xff), as a bad sector or cable would. */
export function flipByte(file: string, offset: number): void {
  const data = readFileSync(file);
  if (offset < 0 || offset >= data.length) throw new Error(`${file}: no byte at ${offset}`);
  const fd = openSync(file, "r+");
  try {
    writeSync(fd, Buffer.of(data[offset]! ^ 0xff), 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}
