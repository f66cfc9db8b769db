/**
 * `vellum monitor --index` (runMonitor) against a server keeping the verifiable index: every
 * revision of the honest index checked by replaying the key function; a forged revision (signed
 * by the index log, but committing a map the log's entries do not make, or another tree) exits 3
 * with evidence naming the revision.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_EVIDENCE, EXIT_OK, runMonitor } from "../../src/cli/monitor.js";
import type { Evidence } from "../../src/client/monitor-evidence.js";
import { encodeRevision } from "../../src/core/index-answer.js";
import { apiActivity } from "../audit/events.js";
import { closeAll, startVellum } from "../client/tlog-fixtures.js";

const dirs: string[] = [];
afterAll(async () => {
  await closeAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function io() {
  const out = { stdout: "", stderr: "" };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s), isTTY: false },
      stderr: { write: (s: string) => (out.stderr += s) },
      env: {},
      signal: new AbortController().signal,
    },
  };
}

async function indexedServer(events: number) {
  const v = await startVellum({ index: true, log: { batchMaxAgeMs: 0 } });
  const enc = (e: unknown) => new TextEncoder().encode(JSON.stringify(e));
  for (let i = 0; i < events; i += 50) {
    await v.log.submitMany(
      Array.from({ length: Math.min(50, events - i) }, (_, k) =>
        enc(
          apiActivity({
            actor: { user: { uid: `u${(i + k) % 9}` } },
            resources: [{ uid: `r${i + k}` }],
          }),
        ),
      ),
    );
    await v.indexer!.catchUp();
  }
  return v;
}

describe("vellum monitor --index", () => {
  it("checks every revision of an honest index", async () => {
    const v = await indexedServer(700);
    const run = io();
    const code = await runMonitor(
      {
        url: v.url,
        key: v.vkey,
        once: true,
        index: true,
        token: v.tokens.read,
        interval: "10",
        concurrency: "4",
      },
      run.io,
    );
    expect(code, run.out.stderr).toBe(EXIT_OK);
    expect(run.out.stdout).toMatch(/index: \d+ revision\(s\) checked, covering 700 entries/);
    await v.indexer!.close();
  });

  it("catches a forged revision, with evidence", async () => {
    const v = await indexedServer(120);
    await v.indexer!.close();
    // The operator signs a revision into the index log whose map the log does not make.
    const logRoot = await v.log.rootAt(v.log.size);
    const forged = await v.indexer!.indexLog.submit(
      encodeRevision({ logSize: v.log.size, logRoot, mapRoot: new Uint8Array(32).fill(7) }),
    );
    const state = mkdtempSync(join(tmpdir(), "vellum-monitor-index-"));
    dirs.push(state);
    const run = io();
    const code = await runMonitor(
      {
        url: v.url,
        key: v.vkey,
        once: true,
        index: true,
        state,
        token: v.tokens.read,
        interval: "10",
        concurrency: "4",
      },
      run.io,
    );
    expect(code, run.out.stderr).toBe(EXIT_EVIDENCE);
    expect(run.out.stderr).toMatch(new RegExp(`index revision ${forged.index} commits a map`));
    const file = readdirSync(state).find((f) => f.startsWith("evidence"))!;
    const evidence = JSON.parse(readFileSync(join(state, file), "utf8")) as Evidence;
    expect(evidence).toMatchObject({ code: "INCONSISTENT", index: forged.index });
    expect(evidence.origin).toBe(`${v.log.origin}/index`);
  });

  it("catches a revision for another tree", async () => {
    const v = await indexedServer(60);
    await v.indexer!.close();
    await v.log.submitMany([new TextEncoder().encode("ten more"), new TextEncoder().encode("x")]);
    const state = mkdtempSync(join(tmpdir(), "vellum-monitor-index-"));
    dirs.push(state);
    const monitor = () => {
      const run = io();
      const options = { url: v.url, key: v.vkey, once: true, index: true, state };
      return runMonitor(
        { ...options, token: v.tokens.read, interval: "10", concurrency: "4" },
        run.io,
      ).then((code) => ({ code, stderr: run.out.stderr }));
    };
    const wrongTree = await v.indexer!.indexLog.submit(
      encodeRevision({
        logSize: 62,
        logRoot: new Uint8Array(32).fill(1),
        mapRoot: v.indexer!.mapRoot,
      }),
    );
    const first = await monitor();
    expect(first.code, first.stderr).toBe(EXIT_EVIDENCE);
    expect(first.stderr).toMatch(
      new RegExp(`index revision ${wrongTree.index} commits another log root`),
    );
  });

  it("catches a revision that goes back", async () => {
    const v = await indexedServer(60);
    await v.indexer!.close();
    const back = await v.indexer!.indexLog.submit(
      encodeRevision({
        logSize: 30,
        logRoot: await v.log.rootAt(30),
        mapRoot: v.indexer!.mapRoot,
      }),
    );
    const state = mkdtempSync(join(tmpdir(), "vellum-monitor-index-"));
    dirs.push(state);
    const run = io();
    const options = { url: v.url, key: v.vkey, once: true, index: true, state };
    const code = await runMonitor(
      { ...options, token: v.tokens.read, interval: "10", concurrency: "4" },
      run.io,
    );
    expect(code, run.out.stderr).toBe(EXIT_EVIDENCE);
    expect(run.out.stderr).toMatch(
      new RegExp(
        `index revision ${back.index} covers 30 entries, fewer than the revision before it \\(60\\)`,
      ),
    );
  });
});
