/**
 * Failover under load (spec/storage.md, "One writer: the lease"): two `vellum serve --store
 * postgres://…` processes on one database and origin (two data directories, one key), one the
 * writer and one standing by, while --clients clients submit entries, each with its own
 * Idempotency-Key, retrying the same key until acknowledged. Every --every-ms the writer is
 * SIGKILLed; the time until the standby answers /readyz is the failover time; the killed one is
 * restarted as the next standby. After --kills kills, every acknowledged entry must be in the
 * log at the index its answer gave, with its payload, exactly once: the number of acknowledged
 * entries lost is reported (it must be 0) and the script exits 1 otherwise.
 *
 * Needs PostgreSQL: `scripts/services.sh up postgres` (or VELLUM_PG_URL). With radosgw running
 * (`scripts/services.sh up s3`), both servers also publish the log into a bucket with Object
 * Lock (`--bucket s3://…/bench/<uuid> --retention 1d`), as the distributed setup runs; the
 * end checks the bucket caught up and `vellum fsck` checks database and bucket. --no-bucket
 * leaves it out. Only 127.0.0.1.
 *
 *   npm run bench:failover
 *   npm run bench:failover -- --kills 20 --clients 16 --every-ms 2000
 */

import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machine, procStat } from "./lib/bench.js";
import { freePort } from "./lib/ports.js";
import { S3_KEYS, serviceEnv } from "./lib/services-env.js";
import { spawnVellum, type VellumProcess } from "./lib/vellum-process.js";

const { values: args } = parseArgs({
  options: {
    kills: { type: "string", default: "20" },
    clients: { type: "string", default: "16" },
    "every-ms": { type: "string", default: "2000" },
    batch: { type: "string", default: "1" },
    "steady-ms": { type: "string", default: "5000" },
    "no-bucket": { type: "boolean", default: false },
    proof: { type: "string", default: "multi" },
  },
});
const batch = Number(args.batch);
if (args.proof !== "multi" && args.proof !== "full") {
  console.error("--proof is multi (one multiproof per batch, as the SDK asks) or full");
  process.exit(2);
}
const steadyMs = Number(args["steady-ms"]);
const kills = Number(args.kills);
const clients = Number(args.clients);
const everyMs = Number(args["every-ms"]);

function pgUrl(): string {
  const pg = serviceEnv("postgres", ["VELLUM_PG_URL"]);
  if (pg === undefined) {
    console.error("bench:failover needs PostgreSQL: scripts/services.sh up postgres");
    process.exit(2);
  }
  return pg.VELLUM_PG_URL as string;
}

/**
 * CPU seconds so far (user + system) of the processes whose command name matches, from /proc
 * (Linux): where the machine's time goes during the steady phase.
 */
function cpuOf(match: (comm: string, pid: number) => boolean): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(`/proc/${entry}/stat`); // undefined: the process ended meanwhile
    if (stat !== undefined && match(stat.comm, Number(entry))) total += stat.cpuSeconds;
  }
  return total;
}

const url = pgUrl();
const s3 = args["no-bucket"] ? undefined : serviceEnv("s3", S3_KEYS);
if (s3 !== undefined) Object.assign(process.env, s3);
const bucketUrl =
  s3 === undefined ? undefined : `s3://${s3.VELLUM_BUCKET}/bench/${randomBytes(8).toString("hex")}`;
const origin = `failover-${randomBytes(4).toString("hex")}.bench/log`;
const dir = mkdtempSync(join(tmpdir(), "vellum-failover-"));
const dataDirs = [join(dir, "a"), join(dir, "b")];
type Server = Omit<VellumProcess, "url">;

const ports: number[] = [];

// Warnings and errors only (no line per request); a standby says "standing by" as a warning.
const serve = (which: number): Server =>
  spawnVellum([
    "serve",
    ...["--data", dataDirs[which]!, "--port", String(ports[which]), "--origin", origin],
    ...["--store", url, "--no-index", "--log-level", "warn"],
    ...(bucketUrl === undefined ? [] : ["--bucket", bucketUrl, "--retention", "1d"]),
  ]);

/** The server's URL once it is the writer and ready, or undefined if it exited. */
async function whenReady(which: number, exited: () => boolean): Promise<string | undefined> {
  const base = `http://127.0.0.1:${ports[which]}`;
  for (;;) {
    if (exited()) return undefined;
    // A standing-by server is ready too (it forwards to the writer): wait for the writer.
    const ok = await fetch(`${base}/readyz`)
      .then(
        async (r) => r.status === 200 && ((await r.json()) as { role?: string }).role !== "standby",
      )
      .catch(() => false);
    if (ok) return base;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The writer's batch counters so far, from its /metrics (vellum_batch_entries, vellum_sequencing_seconds). */
async function batchStats(
  base: string,
): Promise<{ count: number; entries: number; seconds: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
  return {
    count: value("vellum_batch_entries_count"),
    entries: value("vellum_batch_entries_sum"),
    seconds: value("vellum_sequencing_seconds_sum"),
  };
}

function track(p: Server) {
  let done = false;
  void p.exited.then(() => {
    done = true;
  });
  return { p, exited: () => done };
}

async function main(): Promise<void> {
  console.log(`bench:failover — ${machine()}`);
  console.log(
    `${kills} kills of the writer every ${everyMs} ms; ${clients} clients; PostgreSQL ${url.replace(/\/\/[^@]*@/, "//")}; ${bucketUrl === undefined ? "no bucket" : `bucket ${bucketUrl} (radosgw, Object Lock)`}`,
  );
  // The key exists before either server starts; both data directories hold it.
  mkdirSync(dataDirs[0]!, { mode: 0o700 });
  mkdirSync(dataDirs[1]!, { mode: 0o700 });
  const key = spawnVellum(["keygen", "--name", origin, "--out", join(dataDirs[0]!, "log.key")]);
  await key.exited;
  copyFileSync(join(dataDirs[0]!, "log.key"), join(dataDirs[1]!, "log.key"));

  ports.push(await freePort(), await freePort());
  let writer = track(serve(0));
  let writerUrl = await whenReady(0, writer.exited);
  if (writerUrl === undefined)
    throw new Error(`the first server did not start:\n${writer.p.output()}`);
  let writerDir = 0;
  let standby = track(serve(1));
  const token = readFileSync(join(dataDirs[0]!, "admin.token"), "utf8").trim();

  // Clients: each submission has its own key and is retried with it until acknowledged.
  const acked = new Map<string, number>(); // payload → index
  const latencies: number[] = []; // submit → acknowledged (receipt), ms, steady phase only
  let steadyOver = false;
  let stopping = false;
  let retries = 0;
  // Client c sends to server c % 2: half through the writer, half through the standby, which
  // forwards (a balancer in front of both would do the same). One entry per request, or
  // --batch entries in a POST /v1/entries/batch answered as the SDK's submitBatch asks
  // (?proof=multi: one checkpoint and one multiproof for the batch; --proof full: a whole
  // receipt per entry, each carrying the checkpoint note twice: 1.3-2 KB an entry).
  const client = async (c: number) => {
    for (let seq = 0; !stopping; seq++) {
      const bodies = Array.from(
        { length: batch },
        (_, i) => `client ${c} request ${seq} entry ${i}`,
      );
      const sentAt = performance.now();
      for (;;) {
        const target = `http://127.0.0.1:${ports[c % 2]}`;
        const res = await (batch === 1
          ? fetch(`${target}/v1/entries`, {
              method: "POST",
              body: bodies[0],
              headers: { Authorization: `Bearer ${token}`, "Idempotency-Key": bodies[0]! },
            })
          : fetch(`${target}/v1/entries/batch?proof=${args.proof}`, {
              method: "POST",
              body: JSON.stringify({
                entries: bodies.map((b) => ({
                  payload: Buffer.from(b).toString("base64"),
                  idempotencyKey: b,
                })),
              }),
              headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
            })
        ).catch(() => undefined);
        if (res !== undefined && (res.status === 201 || res.status === 200)) {
          const answer = (await res.json()) as
            | { index: number }
            | { results: { status: number; index?: number }[] };
          if ("index" in answer) {
            acked.set(bodies[0]!, answer.index);
            if (!steadyOver) latencies.push(performance.now() - sentAt);
            break;
          }
          // A batch: keep what was acknowledged, resend the rest (same keys).
          const failed: string[] = [];
          answer.results.forEach((r, i) => {
            if ((r.status === 201 || r.status === 200) && r.index !== undefined)
              acked.set(bodies[i]!, r.index);
            else failed.push(bodies[i]!);
          });
          if (failed.length === 0) {
            if (!steadyOver) latencies.push(performance.now() - sentAt);
            break;
          }
          bodies.splice(0, bodies.length, ...failed);
        } else await res?.body?.cancel();
        retries++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  // The standby is up (forwarding) before the clients start.
  while (!/forwarding requests on/.test(standby.p.output())) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const started = Date.now();
  const running = Array.from({ length: clients }, (_, c) => client(c));
  // A steady phase first: the rate through both front ends with no failure.
  const writerPid = writer.p.child.pid;
  const groups: [string, (comm: string, pid: number) => boolean][] = [
    ["the writer", (_, pid) => pid === writerPid],
    ["the standby", (_, pid) => pid === standby.p.child.pid],
    ["PostgreSQL", (comm) => comm === "postgres"],
    ["radosgw + OSD", (comm) => comm === "radosgw" || comm.startsWith("ceph-osd")],
    ["this load generator", (_, pid) => pid === process.pid],
  ];
  const cpuBefore = groups.map(([, m]) => cpuOf(m));
  const ackedBefore = acked.size;
  const batchesBefore = await batchStats(writerUrl);
  await new Promise((r) => setTimeout(r, steadyMs));
  const steady = acked.size;
  const cpuAfter = groups.map(([, m]) => cpuOf(m));
  const batchesAfter = await batchStats(writerUrl);
  steadyOver = true;
  latencies.sort((a, b) => a - b);
  const lq = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  console.log(
    `steady, ${steadyMs / 1000} s, no kills: ${(steady / (steadyMs / 1000)).toFixed(0)} durable entries/s through both front ends (${batch} per request); submit → receipt p50 ${lq(0.5).toFixed(1)} ms, p99 ${lq(0.99).toFixed(1)} ms`,
  );
  const during = Math.max(1, steady - ackedBefore);
  console.log(
    `  CPU during it, share of one core (µs per entry): ${groups
      .map(
        ([name], i) =>
          `${name} ${((100 * ((cpuAfter[i] as number) - (cpuBefore[i] as number))) / (steadyMs / 1000)).toFixed(0)} % (${((1e6 * ((cpuAfter[i] as number) - (cpuBefore[i] as number))) / during).toFixed(0)})`,
      )
      .join(", ")}`,
  );

  const batches = batchesAfter.count - batchesBefore.count;
  console.log(
    `  the writer's batches: ${batches} (${(batches / (steadyMs / 1000)).toFixed(0)}/s), ${((batchesAfter.entries - batchesBefore.entries) / Math.max(1, batches)).toFixed(0)} entries each, ${((1000 * (batchesAfter.seconds - batchesBefore.seconds)) / Math.max(1, batches)).toFixed(1)} ms from queue to stored checkpoint on average`,
  );

  const failovers: number[] = [];
  for (let k = 0; k < kills; k++) {
    await new Promise((r) => setTimeout(r, everyMs));
    await new Promise((r) => setTimeout(r, 0));
    // Wait until the standby is standing by (it has the lease's table and polls it).
    while (!/forwarding requests on/.test(standby.p.output())) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const killedAt = Date.now();
    await writer.p.kill();
    const next = await whenReady(1 - writerDir, standby.exited);
    if (next === undefined) throw new Error(`the standby exited:\n${standby.p.output()}`);
    failovers.push(Date.now() - killedAt);
    if (failovers.at(-1)! > 6000) {
      // Slow: say what the new writer said while taking over.
      const tail = standby.p.output().split("\n").slice(-8).join("\n");
      process.stdout.write(`slow failover; the new writer's last lines:\n${tail}\n`);
    }
    writerUrl = next;
    const restarted = writerDir;
    writerDir = 1 - writerDir;
    writer = standby;
    standby = track(serve(restarted));
    process.stdout.write(
      `kill ${k + 1}: failover ${failovers.at(-1)} ms, ${acked.size} acknowledged\n`,
    );
  }
  stopping = true;
  await Promise.all(running);
  const elapsed = (Date.now() - started) / 1000;

  // Check: every acknowledged entry at its index, with its payload, once.
  const byIndex = new Map<number, string>();
  let next: number | null = 0;
  while (next !== null) {
    const res = await fetch(`${writerUrl}/v1/entries?start=${next}&limit=1000`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    const page = (await res.json()) as {
      entries: { index: number; payload: string }[];
      next: number | null;
    };
    for (const e of page.entries) byIndex.set(e.index, Buffer.from(e.payload, "base64").toString());
    next = page.next;
  }
  let lost = 0;
  for (const [body, index] of acked) if (byIndex.get(index) !== body) lost++;
  const counts = new Map<string, number>();
  for (const body of byIndex.values()) counts.set(body, (counts.get(body) ?? 0) + 1);
  const twice = [...counts.values()].filter((n) => n > 1).length;
  let bucketLine = "";
  if (bucketUrl !== undefined && writerUrl !== undefined) {
    const started = performance.now();
    let lag = "";
    while (performance.now() - started < 60_000) {
      const metrics = await (await fetch(`${writerUrl}/metrics`)).text();
      lag = /^vellum_archive_lag_entries (\d+)$/m.exec(metrics)?.[1] ?? "?";
      if (lag === "0") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    bucketLine = `bucket: caught up ${lag === "0" ? `${((performance.now() - started) / 1000).toFixed(1)} s after the load stopped` : `NOT within 60 s (lag ${lag})`}`;
  }
  await writer.p.stop();
  await standby.p.stop();
  if (bucketUrl !== undefined) {
    const fsck = spawnVellum([
      ...["fsck", "--data", dataDirs[writerDir]!, "--store", url],
      ...["--archive", bucketUrl, "--retention", "1d"],
    ]);
    const { code } = await fsck.exited;
    bucketLine += `; vellum fsck (database and bucket): ${code === 0 ? "clean" : `exit ${code}\n${fsck.output()}`}`;
  }
  rmSync(dir, { recursive: true, force: true });

  failovers.sort((a, b) => a - b);
  const pct = (q: number) =>
    failovers[Math.min(failovers.length - 1, Math.floor(q * failovers.length))];
  console.log(
    `\n${kills} kills in ${elapsed.toFixed(1)} s: failover p50 ${pct(0.5)} ms, max ${failovers.at(-1)} ms`,
  );
  console.log(
    `${acked.size} entries acknowledged (${(acked.size / elapsed).toFixed(0)}/s across the kills), ${retries} retries; in the log: ${byIndex.size}`,
  );
  console.log(`acknowledged entries lost: ${lost}; payloads logged twice: ${twice}`);
  if (bucketLine !== "") console.log(bucketLine);
  if (lost > 0 || twice > 0) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
