/**
 * The verifiable index with a real `vellum serve` on 127.0.0.1: events in, queries out and
 * verified by the SDK; /index/ served as tlog-tiles; `vellum index rebuild` on the stopped
 * server replays the log and finds the index log's latest revision, and the restarted server
 * answers the same; a store that disagrees with the index log is said plainly in the server's
 * log and index queries answer 503 while the log itself goes on; `--no-index` keeps none.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { VellumClient } from "../../src/client/http.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { apiActivity } from "../audit/events.js";
import { runVellum } from "../helpers/cli.js";
import { startVellum } from "../helpers/processes.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const serve = (data: string, ...more: string[]) =>
  startVellum(["serve", "--data", data, "--port", "0", "--host", "127.0.0.1", ...more], "/readyz");

async function untilIndexed(client: VellumClient, logKey: string, size: number, tries = 200) {
  for (let i = 0; ; i++) {
    const r = await client.query({ action: "UpdateInvoice" }, { logKey }).catch(() => undefined);
    if (r !== undefined && r.treeSize >= size) return r;
    if (i > tries) throw new Error("the index did not catch up");
    await new Promise((done) => setTimeout(done, 25));
  }
}

describe("the verifiable index, end to end", () => {
  it("answers proven queries, rebuilds equal from scratch, survives a bad store", async () => {
    const data = mkdtempSync(join(tmpdir(), "vellum-index-e2e-"));
    dirs.push(data);
    let server = await serve(data);
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const logKey = readFileSync(join(data, "log.vkey"), "utf8").trim();
    let client = new VellumClient({ url: server.url, token });
    const events = Array.from({ length: 40 }, (_, i) =>
      apiActivity({
        actor: { user: { uid: ["alice", "bob"][i % 2] } },
        resources: [{ uid: `invoice-${i % 4}` }],
        metadata: { product: { name: "e2e" }, version: "1.8.0", uid: `e2e-${i}` },
      }),
    );
    const logged = await client.eventBatch(events);
    await untilIndexed(client, logKey, 40);
    const alice = await client.query({ actor: "alice", resource: "invoice-2" }, { logKey });
    expect(alice.entries.map((e) => e.index)).toEqual(
      logged.filter((_, i) => i % 2 === 0 && i % 4 === 2).map((r) => r.index),
    );
    const indexCheckpoint = await (await fetch(`${server.url}/index/checkpoint`)).text();
    expect(indexCheckpoint.split("\n")[0]).toMatch(/\/index$/);
    expect((await server.stop()).code).toBe(0);

    // Rebuilt from scratch, the index is the one the index log committed.
    const rebuilt = runVellum(["index", "rebuild", "--data", data]);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(
      /at 40 entries its map root [0-9a-f]{64} is the one the index log's revision \d+ committed/,
    );
    server = await serve(data);
    client = new VellumClient({ url: server.url, token });
    const again = await client.query({ actor: "alice", resource: "invoice-2" }, { logKey });
    expect(again.entries.map((e) => e.index)).toEqual(alice.entries.map((e) => e.index));
    expect((await server.stop()).code).toBe(0);

    // A store that disagrees with the index log: the server says so, the log goes on.
    const store = await openLevelDatabase(join(data, "index"));
    const kv = store.namespace("index");
    const state = (await kv.get(Uint8Array.of(0x73)))!;
    state[39]! ^= 1;
    await kv.write([{ type: "put", key: Uint8Array.of(0x73), value: state }]);
    await store.close();
    server = await serve(data);
    client = new VellumClient({ url: server.url, token });
    expect(server.output()).toMatch(/the verifiable index is unavailable .*vellum index rebuild/);
    await expect(client.query({ actor: "alice" }, { logKey })).rejects.toMatchObject({
      code: "UNAVAILABLE",
    });
    expect(
      (
        await client.event(
          apiActivity({ metadata: { product: { name: "e2e" }, version: "1.8.0", uid: "after" } }),
        )
      ).index,
    ).toBe(40);
    expect((await server.stop()).code).toBe(0);
    // And a rebuild repairs it.
    expect(runVellum(["index", "rebuild", "--data", data]).code).toBe(0);

    // Without the index: no /index/, and a key query says to ask for a window.
    server = await serve(data, "--no-index");
    expect((await fetch(`${server.url}/index/checkpoint`)).status).toBe(404);
    const res = await fetch(`${server.url}/v1/events?actor=alice`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/keeps no index/);
    expect((await server.stop()).code).toBe(0);
  });

  it("takes --index-interval-ms: a revision at most that often, within bounds", async () => {
    const data = mkdtempSync(join(tmpdir(), "vellum-index-interval-"));
    dirs.push(data);
    const refused = runVellum(["serve", "--data", data, "--index-interval-ms", "50"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/index-interval-ms/);

    // Six seconds between revisions: an event logged just after one waits for the next, longer
    // than the default (2.5 s) would make it.
    const server = await serve(data, "--index-interval-ms", "6000");
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const logKey = readFileSync(join(data, "log.vkey"), "utf8").trim();
    const client = new VellumClient({ url: server.url, token });
    const event = (uid: string) =>
      apiActivity({ metadata: { product: { name: "e2e" }, version: "1.8.0", uid } });
    await client.event(event("first"));
    await untilIndexed(client, logKey, 1, 600);
    await client.event(event("second"));
    await new Promise((done) => setTimeout(done, 3500));
    const r = await client.query({ action: "UpdateInvoice" }, { logKey });
    expect(r.treeSize).toBe(1);
    await untilIndexed(client, logKey, 2, 600);
    expect((await server.stop()).code).toBe(0);
  });
});
