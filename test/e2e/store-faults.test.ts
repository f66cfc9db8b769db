/**
 * The stores cut off mid-run (issue 15), with real processes and real services: PostgreSQL
 * (`--store postgres://…`) and radosgw (`--archive s3://…`) reached through a TCP fault proxy
 * (test/helpers/tcp-proxy.ts) that the test cuts and restores. What spec/storage.md promises:
 *
 * - the database unreachable briefly: the writer stops acknowledging (fail-stop: 503
 *   STORAGE_FAILURE, /readyz failed, said in its log), loses nothing it acknowledged, and comes
 *   back by itself once the database answers, on one consistent history;
 * - the database unreachable from the writer for longer than the lease: a standby takes over,
 *   the cut-off writer stops (exit 4), every acknowledged entry is in the new writer's tree, and
 *   no size has two trees — when connections are refused, and also when the network drops
 *   packets (a partition: nothing answers, nothing fails), where the writer must still stop
 *   within about a lease;
 * - the bucket unreachable: the log acknowledges whatever the bucket does; the archive lags and
 *   catches up once it answers, and `vellum archive check` finds it whole.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { type NoteVerifier, verifierFromKey } from "../../src/core/keys.js";
import { verifyTlogProof } from "../../src/core/tlog-proof.js";
import { verifyConsistency, verifyInclusion } from "../../src/core/verify.js";
import { runVellum } from "../helpers/cli.js";
import { spawnVellum } from "../helpers/processes.js";
import { needService, S3_KEYS } from "../helpers/services.js";
import { startTcpProxy, type TcpProxy, throughProxy } from "../helpers/tcp-proxy.js";
import { until } from "../helpers/until.js";

const pgEnv = needService("postgres", ["VELLUM_PG_URL"]);
const s3Env = needService("s3", S3_KEYS);
const dir = mkdtempSync(join(tmpdir(), "vellum-store-faults-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
type Server = ReturnType<typeof spawnVellum>;

// What a test started ends with it, even when it fails half-way (processes.ts kills what is
// left after the file).
const proxies: TcpProxy[] = [];
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((p) => p.kill()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

/** `vellum serve …`, killed after the test if it is still running. */
function start(args: string[], env?: Record<string, string>): Server {
  const p = spawnVellum(args, env === undefined ? {} : { env });
  servers.push(p);
  return p;
}

const quiet = (out: string) =>
  out
    .split("\n")
    .filter((l) => !l.includes('"msg":"request"'))
    .join("\n");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const urlOf = (p: Server) => /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.stdout())?.[1];

/** The server's URL once it is the writer and ready (not a standby's front end). */
async function writerReady(p: Server, ms = 20_000): Promise<string> {
  const ended = p.exited.then((e) => {
    throw new Error(`the server exited (${JSON.stringify(e)}):\n${quiet(p.output())}`);
  });
  const ready = until(
    "the server ready as the writer",
    async () => {
      const url = urlOf(p);
      if (url === undefined) return undefined;
      const res = await fetch(`${url}/readyz`);
      const body = (await res.json()) as { role?: string };
      return res.status === 200 && body.role !== "standby" ? url : undefined;
    },
    ms,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${quiet(p.output())}`);
  });
  ended.catch(() => undefined);
  return Promise.race([ready, ended]);
}

interface Ack {
  readonly payload: string;
  readonly index: number;
  readonly leafHash: string;
  readonly treeSize: number;
  readonly checkpoint: string;
  readonly receipt: string;
}

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly retryAfter: string | null;
  readonly body: Record<string, unknown>;
}

async function submit(url: string, token: string, payload: string): Promise<Answer> {
  const res = await fetch(`${url}/v1/entries`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/octet-stream" },
    body: payload,
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    retryAfter: res.headers.get("retry-after"),
    body: (await res.json()) as Record<string, unknown>,
  };
}

/** Submits each payload alone (a receipt each); every one must be acknowledged (201). */
async function submitAll(url: string, token: string, payloads: string[]): Promise<Ack[]> {
  const acks: Ack[] = [];
  for (const payload of payloads) {
    const a = await submit(url, token, payload);
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    acks.push({ payload, ...(a.body as Omit<Ack, "payload">) });
  }
  return acks;
}

/** Submits the payloads as batches of at most 1000; every one must be acknowledged. */
async function submitBatch(url: string, token: string, payloads: string[]): Promise<void> {
  for (let i = 0; i < payloads.length; i += 1000) {
    const res = await fetch(`${url}/v1/entries/batch`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        entries: payloads
          .slice(i, i + 1000)
          .map((p) => ({ payload: Buffer.from(p).toString("base64") })),
      }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: { status: number }[] };
    expect(results.map((r) => r.status)).toEqual(results.map(() => 201));
  }
}

const b64 = (s: string) => Uint8Array.from(Buffer.from(s, "base64"));

/** The log's checkpoint at `url`, verified with the log's key. */
async function checkpointOf(url: string, verifier: NoteVerifier) {
  const note = await (await fetch(`${url}/checkpoint`)).text();
  return { note, ...openCheckpoint(note, verifier).checkpoint };
}

/**
 * Every receipt verifies on its own (signed checkpoint, inclusion), the tree at `url` has the
 * entry at its index with its payload (inclusion at the current size), and the current
 * checkpoint extends each receipt's (consistency).
 */
async function checkAcknowledged(
  url: string,
  token: string,
  verifier: NoteVerifier,
  acks: readonly Ack[],
): Promise<void> {
  const now = await checkpointOf(url, verifier);
  const consistent = new Set<number>();
  for (const a of acks) {
    const verified = verifyTlogProof(a.receipt, b64(a.leafHash), verifier);
    expect(verified.index).toBe(a.index);
    const incl = (await (
      await fetch(`${url}/v1/proofs/inclusion?index=${a.index}&size=${now.size}`)
    ).json()) as { proof: string[] };
    verifyInclusion(a.index, now.size, b64(a.leafHash), incl.proof.map(b64), now.rootHash);
    const size = verified.checkpoint.size;
    if (consistent.has(size)) continue;
    const cons = (await (
      await fetch(`${url}/v1/proofs/consistency?from=${size}&to=${now.size}`)
    ).json()) as { proof: string[] };
    verifyConsistency(
      size,
      now.size,
      cons.proof.map(b64),
      verified.checkpoint.rootHash,
      now.rootHash,
    );
    consistent.add(size);
  }
  // The payloads themselves, read back by index.
  const first = acks[0]!.index;
  const res = await fetch(`${url}/v1/entries?start=${first}&limit=1000`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  const { entries } = (await res.json()) as {
    entries: { index: number; leafHash: string; payload: string }[];
  };
  const byIndex = new Map(entries.map((e) => [e.index, e]));
  for (const a of acks) {
    const e = byIndex.get(a.index);
    expect(e?.leafHash, `entry ${a.index}`).toBe(a.leafHash);
    expect(Buffer.from(e!.payload, "base64").toString(), `entry ${a.index}`).toBe(a.payload);
  }
}

async function readyz(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe.skipIf(pgEnv === undefined)("the PostgreSQL store cut off", () => {
  const serve = (data: string, origin: string, store: string): Server =>
    start(["serve", "--data", data, "--port", "0", "--origin", origin, "--store", store]);
  const freshOrigin = () => `faults-${randomBytes(4).toString("hex")}.e2e.test/log`;

  it("the database unreachable, briefly: 503 and /readyz failed, nothing lost, back by itself", {
    timeout: 60_000,
  }, async () => {
    const pgUrl = pgEnv!.VELLUM_PG_URL!;
    const proxy = await startTcpProxy(pgUrl);
    proxies.push(proxy);
    const data = join(dir, "brief");
    const w = serve(data, freshOrigin(), throughProxy(pgUrl, proxy));
    const url = await writerReady(w);
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const verifier = verifierFromKey(readFileSync(join(data, "log.vkey"), "utf8").trim());
    const acks = await submitAll(
      url,
      token,
      Array.from({ length: 20 }, (_, i) => `before the cut ${i}`),
    );
    const before = await checkpointOf(url, verifier);
    expect(before.size).toBe(20);

    // The database goes away (connections reset, new ones refused) for about a second.
    proxy.cut();
    const cutAt = performance.now();
    const during = await submit(url, token, "during the cut");
    expect(during.status).toBe(503);
    expect(during.type).toMatch(/^application\/problem\+json/);
    expect(during.retryAfter).toBe("1");
    expect(["STORAGE_FAILURE", "UNAVAILABLE"]).toContain(during.body.code);
    // The log has stopped: what is queued or new is refused the same way, /readyz says why.
    const again = await submit(url, token, "during the cut, again");
    expect(again.status).toBe(503);
    expect(again.body.code).toBe("STORAGE_FAILURE");
    expect(again.body.detail).toMatch(/stopped acknowledging after a storage failure/);
    const failed = await readyz(url);
    expect(failed.status).toBe(503);
    expect(failed.body.status).toBe("failed");
    expect(failed.body.reason).toMatch(/storage failure/);
    // What was released is still served.
    expect((await checkpointOf(url, verifier)).size).toBe(before.size);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^vellum_storage_failed 1$/m);
    expect(metrics).toMatch(/^vellum_storage_failures_total\{class="OTHER"\} [1-9]/m);

    await sleep(Math.max(0, 1000 - (performance.now() - cutAt)));
    proxy.restore();
    const restoredAt = performance.now();
    // Back by itself: ready, and acknowledging again, without a restart.
    await until("ready again after the cut", async () =>
      (await readyz(url)).status === 200 ? true : undefined,
    );
    const readyAt = performance.now();
    const after = await submitAll(url, token, ["after the cut"]);
    const unavailableMs = performance.now() - cutAt;
    console.log(
      `database cut for ${Math.round(restoredAt - cutAt)} ms: writer unavailable for ${Math.round(unavailableMs)} ms (ready ${Math.round(readyAt - restoredAt)} ms after the database answered)`,
    );
    expect(readyAt - restoredAt).toBeLessThan(5_000); // backoff 100 ms doubling: ~1.6 s at most

    // Nothing acknowledged was lost, nothing refused was stored; one history throughout.
    expect(after[0]!.index).toBe(20);
    await checkAcknowledged(url, token, verifier, [...acks, ...after]);
    expect((await checkpointOf(url, verifier)).size).toBe(21);
    // The server said what happened, plainly.
    expect(w.output()).toMatch(
      /stopped acknowledging entries after a storage failure; recovering: .*PostgreSQL/,
    );
    expect(w.output()).toMatch(/storage recovered after \d+ ms; acknowledging again/);
    expect(proxy.counts.cut + proxy.counts.refused).toBeGreaterThan(0);
    expect((await w.stop()).code, quiet(w.output())).toBe(0);
  });

  /**
   * A writer W reaching the database through a fault proxy, with 310 entries (the last 10
   * submitted one by one, receipts kept), and a standby S reaching it directly (the same key).
   */
  async function writerAndStandby(name: string) {
    const pgUrl = pgEnv!.VELLUM_PG_URL!;
    const origin = freshOrigin();
    const proxy = await startTcpProxy(pgUrl);
    proxies.push(proxy);
    const wData = join(dir, `${name}-w`);
    const w = serve(wData, origin, throughProxy(pgUrl, proxy));
    const wUrl = await writerReady(w);
    const token = readFileSync(join(wData, "admin.token"), "utf8").trim();
    const verifier = verifierFromKey(readFileSync(join(wData, "log.vkey"), "utf8").trim());
    await submitBatch(
      wUrl,
      token,
      Array.from({ length: 300 }, (_, i) => `{"n":${i}}`),
    );
    const acks = await submitAll(
      wUrl,
      token,
      Array.from({ length: 10 }, (_, i) => `acknowledged by the writer ${i}`),
    );
    const sData = join(dir, `${name}-s`);
    mkdirSync(sData, { mode: 0o700 });
    copyFileSync(join(wData, "log.key"), join(sData, "log.key"));
    const s = serve(sData, origin, pgUrl);
    await until("the standby standing by", async () =>
      /standing by: .* is the writer of/.test(s.output()) ? true : undefined,
    );
    const last = await checkpointOf(wUrl, verifier);
    expect(last.size).toBe(310);
    return { proxy, w, wUrl, s, token, verifier, acks, last };
  }

  /**
   * After a takeover: every entry the old writer acknowledged is in the new writer's tree, the
   * old writer's last checkpoint is the stored one of its size (one tree per size), the new
   * writer acknowledges, and every stored checkpoint is consistent with its latest.
   */
  async function checkOneHistory(
    sUrl: string,
    token: string,
    verifier: NoteVerifier,
    acks: readonly Ack[],
    last: { size: number; rootHash: Uint8Array },
  ): Promise<void> {
    expect((await checkpointOf(sUrl, verifier)).size).toBe(last.size);
    const stored = await (await fetch(`${sUrl}/v1/checkpoints/${last.size}`)).text();
    expect(Buffer.from(openCheckpoint(stored, verifier).checkpoint.rootHash)).toEqual(
      Buffer.from(last.rootHash),
    );
    const more = await submitAll(sUrl, token, ["acknowledged by the new writer"]);
    expect(more[0]!.index).toBe(last.size);
    await checkAcknowledged(sUrl, token, verifier, [...acks, ...more]);
    const now = await checkpointOf(sUrl, verifier);
    const { checkpoints } = (await (await fetch(`${sUrl}/v1/checkpoints?limit=1000`)).json()) as {
      checkpoints: string[];
    };
    expect(checkpoints.length).toBeGreaterThan(2);
    for (const note of checkpoints) {
      const cp = openCheckpoint(note, verifier).checkpoint;
      const cons = (await (
        await fetch(`${sUrl}/v1/proofs/consistency?from=${cp.size}&to=${now.size}`)
      ).json()) as { proof: string[] };
      verifyConsistency(cp.size, now.size, cons.proof.map(b64), cp.rootHash, now.rootHash);
    }
  }

  it("the database unreachable from the writer, longer than the lease, with a standby", {
    timeout: 60_000,
  }, async () => {
    const { proxy, w, wUrl, s, token, verifier, acks, last } = await writerAndStandby("lease");
    // The writer loses the database (connections reset, new ones refused) past its lease (3 s).
    proxy.cut();
    const cutAt = performance.now();
    const during = await submit(wUrl, token, "to the cut-off writer");
    expect(during.status).toBe(503);
    expect(["STORAGE_FAILURE", "UNAVAILABLE"]).toContain(during.body.code);
    const ms = () => Math.round(performance.now() - cutAt);
    let exitedMs = -1;
    let takeoverMs = -1;
    const [sUrl, exit] = await Promise.all([
      writerReady(s).then((u) => {
        takeoverMs = ms();
        return u;
      }),
      w.exited.then((e) => {
        exitedMs = ms();
        return e;
      }),
    ]);
    console.log(
      `database cut off from the writer: the standby took over after ${takeoverMs} ms, the writer exited after ${exitedMs} ms`,
    );
    expect(s.output()).toMatch(/took over as the writer of .* \(fence \d+\)/);
    expect(exit.code, quiet(w.output())).toBe(4);
    expect(w.output()).toMatch(/could not renew the writer lease|lost the writer lease/);
    expect(takeoverMs).toBeLessThan(15_000); // ~3.5 s expected; shared machines are slow

    await checkOneHistory(sUrl, token, verifier, acks, last);
    proxy.restore();
    expect((await s.stop()).code, quiet(s.output())).toBe(0);
  });

  // spec/storage.md, "One writer: the lease": "the database unreachable: writes fail (fail-stop,
  // as with a disk error); after a whole lease period without renewal the writer stops". Here
  // the network drops packets instead of refusing connections: nothing answers, nothing fails.
  it("the database unreachable from the writer by a partition (packets dropped), longer than the lease", {
    timeout: 60_000,
  }, async () => {
    const { proxy, w, wUrl, s, token, verifier, acks, last } = await writerAndStandby("partition");
    proxy.cut("blackhole");
    const cutAt = performance.now();
    const ms = () => Math.round(performance.now() - cutAt);
    let exitedMs: number | undefined;
    void w.exited.then(() => {
      exitedMs = ms();
    });
    // A submission to the cut-off writer: answered (503) or at least closed, not left hanging.
    let answeredMs: number | undefined;
    let answer = "no answer";
    void fetch(`${wUrl}/v1/entries`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      body: "to the partitioned writer",
      signal: AbortSignal.timeout(20_000),
    }).then(
      async (res) => {
        answeredMs = ms();
        answer = `${res.status} ${await res.text()}`;
      },
      (e: Error) => {
        answeredMs = ms();
        answer =
          e.name === "TimeoutError" ? "no answer in 20 s" : `connection closed: ${e.message}`;
      },
    );
    const sUrl = await writerReady(s);
    const takeoverMs = ms();
    expect(s.output()).toMatch(/took over as the writer of .* \(fence \d+\)/);
    // A whole lease (3 s) without renewal, a renewal period (1 s), and room for a slow machine.
    const bound = 8_000;
    await until(
      "the cut-off writer stopped",
      async () => (exitedMs !== undefined ? true : undefined),
      bound - ms(),
    ).catch(() => undefined);
    const wReady = exitedMs === undefined ? await readyz(wUrl).catch(() => undefined) : undefined;
    console.log(
      `database partitioned from the writer: the standby took over after ${takeoverMs} ms; after ${ms()} ms the writer had ${exitedMs === undefined ? `not stopped (its /readyz: ${JSON.stringify(wReady)})` : `stopped (after ${exitedMs} ms)`}; its submission: ${answeredMs === undefined ? "no answer yet" : `${answer} after ${answeredMs} ms`}`,
    );
    // What the spec promises, checked softly so that each way it is broken is reported.
    const state = (stopped: boolean) => (stopped ? "stopped" : "still running");
    expect
      .soft(state(exitedMs !== undefined), `the writer stops within ${bound} ms of the cut`)
      .toBe("stopped");
    expect
      .soft(wReady?.status, "a writer cut off from the database past its lease is not ready")
      .not.toBe(200);
    expect
      .soft(answeredMs === undefined ? "hanging" : answer, "a submission to it is not left hanging")
      .not.toBe("hanging");

    // The partition heals: whatever it did meanwhile, the old writer writes nothing and stops.
    proxy.restore();
    const exit = await Promise.race([w.exited, sleep(10_000).then(() => undefined)]);
    expect(exit?.code, quiet(w.output())).toBe(4);
    expect(w.output()).toMatch(/could not renew the writer lease|lost the writer lease/);
    await checkOneHistory(sUrl, token, verifier, acks, last);
    expect((await s.stop()).code, quiet(s.output())).toBe(0);
  });
});

/**
 * The S3 endpoint and credentials for a child process, as AWS tools take them — and no
 * VELLUM_BUCKET: to the tests it names the bucket, to `vellum serve` it would be --bucket.
 */
function awsEnv(endpoint: string): Record<string, string> {
  const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION } = s3Env!;
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: AWS_ACCESS_KEY_ID!,
    AWS_SECRET_ACCESS_KEY: AWS_SECRET_ACCESS_KEY!,
    AWS_REGION: AWS_REGION!,
    VELLUM_BUCKET: "",
  };
}

describe.skipIf(s3Env === undefined)("the archive's bucket cut off", () => {
  it("the bucket unreachable: every entry acknowledged, the archive lags, then catches up whole", {
    timeout: 60_000,
  }, async () => {
    const endpoint = s3Env!.AWS_ENDPOINT_URL!;
    const proxy = await startTcpProxy(endpoint);
    proxies.push(proxy);
    const data = join(dir, "archive");
    const bucketUrl = `s3://${s3Env!.VELLUM_BUCKET}/faults/${randomUUID()}`;
    const args = ["serve", "--data", data, "--port", "0", "--archive", bucketUrl];
    const server = start([...args, "--retention", "1d"], awsEnv(`http://${proxy.address}`));
    const url = await writerReady(server);
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const lagOf = async () => {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const lag = /^vellum_archive_lag_entries (\d+)$/m.exec(metrics)?.[1];
      return lag === undefined ? undefined : Number(lag);
    };
    // Two full bundles and their tiles, archived.
    await submitBatch(
      url,
      token,
      Array.from({ length: 600 }, (_, i) => `{"n":${i}}`),
    );
    await until("the archive caught up before the cut", async () =>
      (await lagOf()) === 0 ? true : undefined,
    );

    // The bucket goes away: the log goes on acknowledging, the archive falls behind.
    proxy.cut();
    const cutAt = performance.now();
    const started = performance.now();
    const acks = await submitAll(
      url,
      token,
      Array.from({ length: 20 }, (_, i) => `while the bucket is away ${i}`),
    );
    await submitBatch(
      url,
      token,
      Array.from({ length: 300 }, (_, i) => `{"m":${i}}`),
    );
    const submitMs = performance.now() - started;
    expect(submitMs).toBeLessThan(5_000); // the archive never holds a submission up
    expect(acks.at(-1)!.index).toBe(619);
    expect((await readyz(url)).status).toBe(200);
    const behind = await until("the archive lagging", async () => {
      const lag = await lagOf();
      return lag !== undefined && lag > 0 ? lag : undefined;
    });
    expect(behind).toBeGreaterThan(0);
    await until("the server saying the archive is behind", async () =>
      /the archive is behind by \d+ entries and retrying/.test(server.output()) ? true : undefined,
    );
    await sleep(Math.max(0, 2000 - (performance.now() - cutAt)));
    expect(await lagOf()).toBeGreaterThan(0);

    proxy.restore();
    const restoredAt = performance.now();
    await until(
      "the archive caught up after the cut",
      async () => ((await lagOf()) === 0 ? true : undefined),
      30_000,
    );
    const catchUpMs = performance.now() - restoredAt;
    // The step that brought the lag to 0 goes on with the checkpoints and the head.
    await until("the server saying the archive is written again", async () =>
      /the archive is written again/.test(server.output()) ? true : undefined,
    );
    console.log(
      `bucket cut for ${Math.round(restoredAt - cutAt)} ms (920 entries acknowledged meanwhile in ${Math.round(submitMs)} ms): archive lag ${behind} entries, caught up ${Math.round(catchUpMs)} ms after the bucket answered`,
    );
    expect(catchUpMs).toBeLessThan(20_000);
    expect((await server.stop()).code).toBe(0);

    // The bucket alone: whole, locked, consistent.
    const check = runVellum(
      ["archive", "check", bucketUrl, "--key", join(data, "log.vkey"), "--retention", "1d"],
      { env: awsEnv(endpoint) },
    );
    expect(check.code, check.stderr + check.stdout).toBe(0);
    expect(check.stdout).toMatch(
      /^OK: \d+ objects, 3 bundles \(768 entries\), 3 tiles, \d+ checkpoints up to size 920/m,
    );
  });
});
