/**
 * `vellum monitor` in process (runMonitor, the command's body): --once catches up and exits 0
 * with its state saved atomically; a restart resumes from that state; the token comes from
 * VELLUM_TOKEN; a split view exits 3 with an evidence file that verifyEvidence proves and that
 * was POSTed to --webhook; --witnesses reports each witness's view and a witness shown another
 * history exits 3 with evidence; polling stops cleanly on its signal; state of another key is refused;
 * a missing --state directory is created (0700) at start, so the evidence of a tampered log caught
 * on the first run is on disk when the command reports it.
 */
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  EXIT_EVIDENCE,
  EXIT_OK,
  EXIT_USAGE,
  type MonitorCommandOptions,
  runMonitor,
  STATE_FILE,
} from "../../src/cli/monitor.js";
import { type Evidence, verifyEvidence } from "../../src/client/monitor-evidence.js";
import { formatPolicy } from "../../src/core/policy.js";
import {
  closeAll,
  fillTo,
  flipByte,
  startVellum,
  tamperingFetch,
} from "../client/tlog-fixtures.js";
import { serveWitness } from "../helpers/witness.js";
import { openMemoryLog, payloadOf } from "../log/helpers.js";

const dirs: string[] = [];
afterAll(async () => {
  await closeAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vellum-monitor-cli-"));
  dirs.push(d);
  return d;
}

function io(env: Record<string, string> = {}, signal?: AbortSignal) {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s), isTTY: false },
      stderr: { write: (s: string) => (out.stderr += s) },
      env,
      signal: signal ?? new AbortController().signal,
    },
  };
}

const options = (o: Partial<MonitorCommandOptions> & { url: string; key: string }) => ({
  interval: "10",
  concurrency: "4",
  ...o,
});

describe("vellum monitor", () => {
  it("--once: catches up, saves state, resumes after a restart; token from VELLUM_TOKEN", async () => {
    const v = await startVellum();
    await fillTo(v.log, 1000);
    const state = tempDir();
    const run1 = io({ VELLUM_TOKEN: v.tokens.read });
    const code = await runMonitor(options({ url: v.url, key: v.vkey, state, once: true }), run1.io);
    expect({ code, ...run1.out }).toMatchObject({ code: EXIT_OK, stderr: "" });
    expect(run1.out.stdout).toContain("verified size 1,000");
    const saved = JSON.parse(readFileSync(join(state, STATE_FILE), "utf8"));
    expect(saved).toMatchObject({ format: "vellum-monitor-state/v1", size: 1000, logKey: v.vkey });
    expect(saved.checkpoint).toBe(v.log.checkpoint.note);

    await fillTo(v.log, 1500);
    const run2 = io();
    expect(
      await runMonitor(
        options({ url: v.url, key: v.vkey, state, once: true, token: v.tokens.read }),
        run2.io,
      ),
    ).toBe(EXIT_OK);
    expect(run2.out.stdout).toContain("resuming");
    expect(run2.out.stdout).toContain("+500 entries");
    expect(JSON.parse(readFileSync(join(state, STATE_FILE), "utf8")).size).toBe(1500);

    // Without a token the entry bundles are refused (401): a usage error, exit 2, state unchanged.
    await fillTo(v.log, 1600);
    const run3 = io();
    expect(await runMonitor(options({ url: v.url, key: v.vkey, state, once: true }), run3.io)).toBe(
      EXIT_USAGE,
    );
    expect(run3.out.stderr).toContain("UNAUTHENTICATED");
    expect(JSON.parse(readFileSync(join(state, STATE_FILE), "utf8")).size).toBe(1500);

    // The state directory belongs to this log key.
    const other = await startVellum({ log: { origin: "other.example/log" } });
    await expect(
      runMonitor(options({ url: other.url, key: other.vkey, state, once: true }), io().io),
    ).rejects.toMatchObject({ code: "STATE_MISMATCH" });
  });

  it("--witnesses: reports each witness's view; a witness shown another history exits 3 with evidence", async () => {
    const v = await startVellum({ publicReads: true });
    await fillTo(v.log, 300);
    const honest = await serveWitness(1, v.vkey, "cli");
    const misled = await serveWitness(2, v.vkey, "cli");
    expect((await honest.witness.addCheckpoint(`old 0\n\n${v.log.checkpoint.note}`)).status).toBe(
      200,
    );
    const { log: fork } = await openMemoryLog();
    for (let i = 0; i < 200; i++) await fork.submit(payloadOf(i, "fork"));
    expect((await misled.witness.addCheckpoint(`old 0\n\n${fork.checkpoint.note}`)).status).toBe(
      200,
    );
    const dir = tempDir();
    const policyFile = (ws: { name: string; vkey: string; url: string }[]) => {
      const file = join(dir, `policy-${ws.map((w) => w.name).join("-")}.txt`);
      const text = formatPolicy({
        logs: [{ vkey: v.vkey }],
        witnesses: ws,
        groups: [],
        quorum: "none",
      });
      writeFileSync(file, text);
      return file;
    };
    const honestOnly = policyFile([{ name: "honest", vkey: honest.vkey, url: honest.url }]);
    const run1 = io();
    const code1 = await runMonitor(
      options({ url: v.url, key: v.vkey, once: true, policy: honestOnly, witnesses: true }),
      run1.io,
    );
    expect({ code: code1, ...run1.out }).toMatchObject({ code: EXIT_OK, stderr: "" });
    expect(run1.out.stdout).toContain("witness honest: consistent at size 300");

    const state = tempDir();
    const both = policyFile([
      { name: "honest", vkey: honest.vkey, url: honest.url },
      { name: "misled", vkey: misled.vkey, url: misled.url },
    ]);
    const run2 = io();
    const code2 = await runMonitor(
      options({ url: v.url, key: v.vkey, state, once: true, policy: both, witnesses: true }),
      run2.io,
    );
    expect(code2, run2.out.stderr).toBe(EXIT_EVIDENCE);
    expect(run2.out.stderr).toContain("INCONSISTENT");
    const file = readdirSync(state).find((f) => f.startsWith("evidence-"))!;
    const evidence = JSON.parse(readFileSync(join(state, file), "utf8")) as Evidence;
    expect(verifyEvidence(evidence, v.vkey).summary).toMatch(/signed/);
    await fork.close();
  });

  it("a split view: exit 3, an evidence file that proves it, POSTed to the webhook", async () => {
    const a = await startVellum({ publicReads: true });
    const b = await startVellum({ publicReads: true });
    await fillTo(a.log, 300, "A");
    await fillTo(b.log, 400, "B");
    const posted: string[] = [];
    const hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        posted.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const webhook = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/evidence`;
    try {
      const state = tempDir();
      expect(
        await runMonitor(options({ url: a.url, key: a.vkey, state, once: true }), io().io),
      ).toBe(EXIT_OK);
      const run = io();
      const code = await runMonitor(
        options({ url: b.url, key: a.vkey, state, once: true, webhook }),
        run.io,
      );
      expect(code).toBe(EXIT_EVIDENCE);
      expect(run.out.stderr).toContain("INCONSISTENT");
      const files = readdirSync(state).filter((f) => f.startsWith("evidence-"));
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^evidence-\d{8}T\d{6}Z-inconsistent\.json$/);
      const evidence = JSON.parse(readFileSync(join(state, files[0]!), "utf8")) as Evidence;
      expect(verifyEvidence(evidence, a.vkey).proven).toBe(true);
      expect(posted).toHaveLength(1);
      expect(JSON.parse(posted[0]!)).toEqual(evidence);
      // The verified state was not replaced by the contradicting checkpoint.
      expect(JSON.parse(readFileSync(join(state, STATE_FILE), "utf8")).size).toBe(300);
    } finally {
      hook.close();
    }
  });

  it("polls until stopped, without --state (evidence would go to the working directory)", async () => {
    const v = await startVellum({ publicReads: true });
    await fillTo(v.log, 10);
    const controller = new AbortController();
    const run = io({}, controller.signal);
    const done = runMonitor(options({ url: v.url, key: v.vkey, interval: "0.05" }), run.io);
    await fillTo(v.log, 20);
    for (let i = 0; i < 100 && !run.out.stdout.includes("verified size 20"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    controller.abort();
    expect(await done).toBe(EXIT_OK);
    expect(run.out.stdout).toContain("verified size 20");
    expect(run.out.stdout).toContain("stopped at verified size 20");
    expect(existsSync(join(process.cwd(), STATE_FILE))).toBe(false);
  });

  it("--state DIR that does not exist: created with mode 0700 at start, state saved in it", async () => {
    const v = await startVellum({ publicReads: true });
    await fillTo(v.log, 50);
    const state = join(tempDir(), "new", "monitor");
    const keyFile = join(tempDir(), "log.vkey");
    writeFileSync(keyFile, `${v.vkey}\n`);
    const run = io();
    const code = await runMonitor(options({ url: v.url, key: keyFile, state, once: true }), run.io);
    expect({ code, ...run.out }).toMatchObject({ code: EXIT_OK, stderr: "" });
    expect(run.out.stdout).toContain(`created the state directory ${state}`);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    // Saved with the key's text, whichever way it was given: a later run with the text resumes.
    expect(JSON.parse(readFileSync(join(state, STATE_FILE), "utf8"))).toMatchObject({
      size: 50,
      logKey: v.vkey,
    });
    const again = io();
    expect(
      await runMonitor(options({ url: v.url, key: v.vkey, state, once: true }), again.io),
    ).toBe(EXIT_OK);
    expect(again.out.stdout).toContain("resuming");
    expect(again.out.stdout).not.toContain("created the state directory");
  });

  it("a tampered log caught on the first run into a missing --state DIR: exit 3, evidence on disk", async () => {
    const v = await startVellum({ publicReads: true });
    await fillTo(v.log, 600);
    const state = join(tempDir(), "fresh");
    const run = io();
    const code = await runMonitor(
      options({ url: "http://vellum.test/", key: v.vkey, state, once: true }),
      {
        ...run.io,
        fetch: tamperingFetch(v.fetch, (path, bytes) =>
          path === "tile/entries/001" ? flipByte(bytes, -1) : undefined,
        ) as typeof fetch,
      },
    );
    expect(code, run.out.stderr).toBe(EXIT_EVIDENCE);
    const files = readdirSync(state).filter((f) => f.startsWith("evidence-"));
    expect(files).toEqual([expect.stringMatching(/^evidence-\d{8}T\d{6}Z-proof_mismatch\.json$/)]);
    const evidence = JSON.parse(readFileSync(join(state, files[0]!), "utf8")) as Evidence;
    expect(evidence).toMatchObject({ index: 511, checkpoint: { size: 600 } });
    expect(run.out.stderr).toContain(`evidence written to ${join(state, files[0]!)}`);
    // Nothing was verified, so no state was saved.
    expect(existsSync(join(state, STATE_FILE))).toBe(false);
  });

  it("checks its options", async () => {
    const v = await startVellum({ publicReads: true });
    await expect(
      runMonitor(options({ url: v.url, key: v.vkey, interval: "0" }), io().io),
    ).rejects.toMatchObject({ code: "OUT_OF_RANGE" });
    await expect(runMonitor(options({ url: v.url, key: "nope" }), io().io)).rejects.toMatchObject({
      code: "BAD_KEY",
    });
    const notDir = join(tempDir(), "a-file");
    writeFileSync(notDir, "");
    await expect(
      runMonitor(options({ url: v.url, key: v.vkey, state: notDir, once: true }), io().io),
    ).rejects.toMatchObject({
      code: "MALFORMED",
      message: expect.stringContaining("not a directory"),
    });
  });
});
