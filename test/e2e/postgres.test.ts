/**
 * `vellum serve --store postgres://…` against a real PostgreSQL (`scripts/services.sh up
 * postgres`), with real processes: the log, its tokens and the rest live in the database; a
 * second server on the same database and origin (its own data directory, the same key) stands by
 * and takes over when the writer is killed, losing no acknowledged entry; a writer paused
 * (SIGSTOP) while the standby takes over wakes up (SIGCONT), writes nothing, says so and stops.
 */
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { verifyConsistency } from "../../src/core/verify.js";
import { runVellum } from "../helpers/cli.js";
import { spawnVellum } from "../helpers/processes.js";
import { needService } from "../helpers/services.js";
import { until } from "../helpers/until.js";

const env = needService("postgres", ["VELLUM_PG_URL"]);
const dir = mkdtempSync(join(tmpdir(), "vellum-pg-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Server = ReturnType<typeof spawnVellum> & { url?: string };

/** Resolves with the server's URL once it is the writer and ready. */
async function ready(p: Server, ms = 30_000): Promise<string> {
  return until(
    "the server ready",
    async () => {
      const url = /serving on (http:\/\/127\.0\.0\.1:\d+)/.exec(p.stdout())?.[1];
      if (url === undefined) return undefined;
      const res = await fetch(`${url}/readyz`);
      const body = (await res.json()) as { role?: string };
      return res.status === 200 && body.role !== "standby" ? url : undefined;
    },
    ms,
  );
}

describe.skipIf(env === undefined)("vellum serve --store postgres://", () => {
  it("keeps the log in PostgreSQL; a standby takes over from a killed writer, losing nothing", {
    timeout: 120_000,
  }, async () => {
    const url = env!.VELLUM_PG_URL!;
    // A fresh origin: a fresh set of schemas in the shared test database.
    const origin = `pg-${randomBytes(4).toString("hex")}.e2e.test/log`;
    const dataDir = (name: string) => {
      const d = join(dir, name);
      return d;
    };
    const serve = (data: string): Server =>
      spawnVellum(["serve", "--data", data, "--port", "0", "--origin", origin, "--store", url]);
    const first = dataDir("first");
    const a = serve(first);
    const aUrl = await ready(a);
    expect(a.output()).toMatch(
      /state in PostgreSQL at 127\.0\.0\.1:\d+\/vellum \(schemas vellum_pg_/,
    );
    expect(a.output()).not.toMatch(/postgres:\/\//); // the URL (and any password) is not logged
    const token = readFileSync(join(first, "admin.token"), "utf8").trim();
    const lines = join(dir, "lines.jsonl");
    writeFileSync(lines, Array.from({ length: 300 }, (_, i) => `{"n":${i}}\n`).join(""));
    const sub = runVellum(["submit", "--lines", lines, "--url", aUrl, "--token", token]);
    expect(sub.code, sub.stderr).toBe(0);
    const receipt = join(dir, "one.tlog-proof");
    const one = runVellum(["submit", "--url", aUrl, "--token", token, "--out", receipt], {
      input: "invoice 42 paid",
    });
    expect(one.code, one.stderr).toBe(0);
    const before = await (await fetch(`${aUrl}/checkpoint`)).text();

    // A second data directory with the same key stands by while the first one writes.
    const second = dataDir("second");
    mkdirSync(second, { mode: 0o700 });
    copyFileSync(join(first, "log.key"), join(second, "log.key"));
    const b = serve(second);
    const bFront = await until("b standing by", async () =>
      /standing by: .* is the writer of/.test(b.output())
        ? /forwarding requests on (http:\/\/127\.0\.0\.1:\d+)/.exec(b.output())?.[1]
        : undefined,
    );
    // While standing by, b answers as a front end of the writer: ready (as a standby), and
    // submissions and reads sent to it are the writer's.
    const standbyReady = (await (await fetch(`${bFront}/readyz`)).json()) as Record<
      string,
      unknown
    >;
    expect(standbyReady).toEqual({ status: "ready", role: "standby", writer: aUrl });
    const viaB = runVellum(["submit", "--url", bFront, "--token", token], {
      input: "submitted through the standby",
    });
    expect(viaB.code, viaB.stderr).toBe(0);
    const readViaB = await fetch(`${bFront}/v1/entries/301`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(readViaB.status).toBe(200);
    expect(
      Buffer.from(((await readViaB.json()) as { payload: string }).payload, "base64").toString(),
    ).toBe("submitted through the standby");
    // The writer is killed: the standby takes over within the lease (3 s) and a poll.
    const killedAt = Date.now();
    await a.kill();
    const bUrl = await ready(b);
    const failoverMs = Date.now() - killedAt;
    expect(b.output()).toMatch(/took over as the writer/);
    expect(failoverMs).toBeLessThan(15_000); // the bound is ~3.5 s; shared CI machines are slow
    console.log(`failover after SIGKILL: ${failoverMs} ms`);

    // Every acknowledged entry is there; the first server's token works; its receipt verifies.
    const vkey = readFileSync(join(second, "log.vkey"), "utf8").trim();
    const verifier = verifierFromKey(vkey);
    const cpB = openCheckpoint(await (await fetch(`${bUrl}/checkpoint`)).text(), verifier);
    expect(cpB.checkpoint.size).toBe(302);
    expect(bUrl).toBe(bFront); // it took over on the address it answered on as a standby
    const entry = await fetch(`${bUrl}/v1/entries/299`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(entry.status).toBe(200);
    const body = (await entry.json()) as { index: number; payload: string };
    expect(Buffer.from(body.payload, "base64").toString()).toBe('{"n":299}');
    writeFileSync(join(dir, "one.txt"), "invoice 42 paid");
    const verify = runVellum([
      "verify",
      receipt,
      ...["--key", join(second, "log.vkey"), "--entry", join(dir, "one.txt")],
    ]);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);

    // vellum fsck checks the log in PostgreSQL while it runs (one read-only snapshot).
    const live = runVellum(["fsck", "--data", second, "--store", url]);
    expect(live.code, live.stderr + live.stdout).toBe(0);
    expect(live.stdout).toMatch(/tree size 302\b/);
    expect(live.stdout).toMatch(/^clean: no problems found$/m);
    expect(live.stdout).not.toMatch(/postgres:\/\//);
    const otherKey = join(dir, "other");
    mkdirSync(otherKey, { mode: 0o700 });
    writeFileSync(
      join(otherKey, "log.vkey"),
      `${runVellum(["keygen", "--name", "nothing-here.e2e.test/log"]).stdout.trim()}\n`,
    );
    const none = runVellum(["fsck", "--data", otherKey, "--store", url]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/holds no log "nothing-here\.e2e\.test\/log"/);

    // The writer is paused (SIGSTOP) while a standby takes over; woken, it writes nothing.
    const c = serve(first);
    await until("c standing by", async () => (/standing by/.test(c.output()) ? true : undefined));
    b.child.kill("SIGSTOP");
    const cUrl = await ready(c);
    const later = runVellum(["submit", "--url", cUrl, "--token", token], {
      input: "written by the new writer",
    });
    expect(later.code, later.stderr).toBe(0);
    b.child.kill("SIGCONT");
    const ended = await b.exited;
    expect(ended.code).toBe(4);
    expect(b.output()).toMatch(/lost the writer lease \(fence \d+\)/);
    // One history: the checkpoint before the kill, b's, and c's are consistent.
    const after = openCheckpoint(await (await fetch(`${cUrl}/checkpoint`)).text(), verifier);
    expect(after.checkpoint.size).toBe(303);
    const old = openCheckpoint(before, verifier).checkpoint;
    const proof = (await (
      await fetch(`${cUrl}/v1/proofs/consistency?from=${old.size}&to=${after.checkpoint.size}`)
    ).json()) as { proof: string[] };
    verifyConsistency(
      old.size,
      after.checkpoint.size,
      proof.proof.map((h) => Uint8Array.from(Buffer.from(h, "base64"))),
      old.rootHash,
      after.checkpoint.rootHash,
    );
    expect((await c.stop()).code).toBe(0);
  });
});
