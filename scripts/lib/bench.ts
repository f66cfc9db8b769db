/**
 * A tiny benchmark harness: runs a function in timed rounds and reports the median rate, with the
 * machine's details, so numbers quoted in the README can be reproduced and compared.
 */
import { readdirSync, readFileSync } from "node:fs";
import * as os from "node:os";

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  return `node ${process.version}, ${os.platform()} ${os.arch()}, ${os.cpus().length} × ${cpu}`;
}

export interface Result {
  name: string;
  opsPerSec: number;
}

/** Median ops/s over `rounds` rounds of about `ms` milliseconds each (after one warm-up round). */
export function bench(name: string, fn: () => void, { rounds = 5, ms = 300 } = {}): Result {
  const rates: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    let ops = 0;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(ms) * 1_000_000n;
    let now = start;
    while (now < deadline) {
      for (let i = 0; i < 32; i++) fn();
      ops += 32;
      now = process.hrtime.bigint();
    }
    if (r > 0) rates.push(ops / (Number(now - start) / 1e9));
  }
  rates.sort((a, b) => a - b);
  const opsPerSec = rates[Math.floor(rates.length / 2)]!;
  console.log(`${name.padEnd(58)} ${formatRate(opsPerSec).padStart(12)} ops/s`);
  return { name, opsPerSec };
}

export function formatRate(rate: number): string {
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(2)} M`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)} k`;
  return rate.toFixed(0);
}

/**
 * A /proc stat file (stat(5): a process's, or a thread's under /proc/PID/task): its command name
 * (field 2, in parentheses, may hold spaces) and its user + system CPU seconds (fields 14 and 15,
 * counted after the ")" that ends field 2; USER_HZ is 100 on Linux). Undefined when unreadable
 * (not Linux, or the process has ended).
 */
export function procStat(path: string): { comm: string; cpuSeconds: number } | undefined {
  try {
    const stat = readFileSync(path, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
    };
  } catch {
    return undefined;
  }
}

/** The processes whose parent is `pid` (Linux /proc; empty elsewhere): a server's index process. */
export function childProcesses(pid: number): number[] {
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) {
        out.push(Number(name));
      }
    } catch {
      // ended while listed
    }
  }
  return out;
}

/**
 * CPU seconds by thread of process `pid` and its child processes so far, by thread name (Linux
 * /proc; empty elsewhere): the main thread as "main", others by their name ("node" for V8's
 * helpers and libuv's pool); a child's main thread by its name ("vellum-index", the index's
 * process), its other threads as "<that name>:<theirs>" ("vellum-index:node").
 */
export function threadCpu(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === undefined) return out;
  const add = (of: number, name: (tid: string, comm: string) => string) => {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${of}/task`);
    } catch {
      // not Linux, or the process is gone
    }
    for (const tid of tids) {
      const stat = procStat(`/proc/${of}/task/${tid}/stat`);
      if (stat === undefined) continue;
      const key = name(tid, stat.comm);
      out.set(key, (out.get(key) ?? 0) + stat.cpuSeconds);
    }
  };
  add(pid, (tid, comm) => (tid === String(pid) ? "main" : comm));
  for (const child of childProcesses(pid)) {
    const comm = procStat(`/proc/${child}/stat`)?.comm ?? "child";
    add(child, (tid, threadComm) => (tid === String(child) ? comm : `${comm}:${threadComm}`));
  }
  return out;
}

/** CPU between two threadCpu readings in µs per unit by thread, largest first: "main 120, node 40". */
export function perThread(
  before: Map<string, number>,
  after: Map<string, number>,
  units: number,
): string {
  return [...after]
    .map(([name, s]) => [name, (1e6 * (s - (before.get(name) ?? 0))) / units] as const)
    .filter(([, us]) => us >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => `${name} ${us.toFixed(0)}`)
    .join(", ");
}

/**
 * User + system CPU seconds of process `pid` and its live child processes (a server's index
 * process) so far (Linux), or undefined.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const own = procStat(`/proc/${pid}/stat`)?.cpuSeconds;
  if (own === undefined) return undefined;
  let total = own;
  for (const child of childProcesses(pid))
    total += procStat(`/proc/${child}/stat`)?.cpuSeconds ?? 0;
  return total;
}
