/**
 * `vellum serve --access-log` on 127.0.0.1: a read of an entry is recorded (who, from where,
 * what) in the access log before it is answered; the access log is a tlog-tiles log under
 * /access/ whose checkpoint verifies with its own key (DATA/access.vkey), and its
 * records survive a restart.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { decodeLeaf } from "../../src/core/entry.js";
import { formatVerifierKey, parseVerifierKey, verifierFromKey } from "../../src/core/keys.js";
import { decodeEntryBundle } from "../../src/core/tiles.js";
import { runVellum } from "../helpers/cli.js";
import { startVellum } from "../helpers/processes.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const serve = (data: string) =>
  startVellum(
    ["serve", "--data", data, "--port", "0", "--host", "127.0.0.1", "--access-log"],
    "/readyz",
  );

describe("vellum serve --access-log", () => {
  it("records each read before answering it, in a log of its own", async () => {
    const data = mkdtempSync(join(tmpdir(), "vellum-access-e2e-"));
    dirs.push(data);
    let server = await serve(data);
    const token = readFileSync(join(data, "admin.token"), "utf8").trim();
    const auth = { Authorization: `Bearer ${token}` };
    const posted = await fetch(`${server.url}/v1/entries`, {
      method: "POST",
      headers: auth,
      body: "invoice 42 paid",
    });
    expect(posted.status).toBe(201);
    const read = await fetch(`${server.url}/v1/entries/0`, { headers: auth });
    expect(read.status).toBe(200);
    expect((await server.stop()).code).toBe(0);

    server = await serve(data);
    const note = await (await fetch(`${server.url}/access/checkpoint`)).text();
    // The access log has its own key: DATA/access.key (private), DATA/access.vkey.
    expect(statSync(join(data, "access.key")).mode & 0o777).toBe(0o600);
    const accessKey = readFileSync(join(data, "access.vkey"), "utf8").trim();
    const logKey = parseVerifierKey(readFileSync(join(data, "log.vkey"), "utf8").trim());
    expect(parseVerifierKey(accessKey).name).toBe(`${logKey.name}/access`);
    expect(parseVerifierKey(accessKey).publicKey).not.toEqual(logKey.publicKey);
    const cp = openCheckpoint(note, verifierFromKey(accessKey)).checkpoint;
    expect(cp.size).toBe(1);
    // The log's key under the access log's name does not verify it.
    const borrowed = formatVerifierKey({ ...logKey, name: `${logKey.name}/access` });
    expect(() => openCheckpoint(note, verifierFromKey(borrowed))).toThrow();
    const bundle = await fetch(`${server.url}/access/tile/entries/000.p/1`, { headers: auth });
    expect(bundle.status).toBe(200);
    const [leaf] = decodeEntryBundle(new Uint8Array(await bundle.arrayBuffer()), 1);
    const event = JSON.parse(new TextDecoder().decode(decodeLeaf(leaf!).payload));
    expect(event).toMatchObject({
      class_uid: 6003,
      actor: { user: { name: "admin (first start)" } },
      api: {
        operation: "GET /v1/entries/:index",
        request: { uid: read.headers.get("X-Request-Id") },
      },
      resources: [{ uid: "entry:0" }],
      src_endpoint: { ip: "127.0.0.1" },
    });
    // Reading the access log was recorded too.
    const after = await (await fetch(`${server.url}/access/checkpoint`)).text();
    expect(openCheckpoint(after, verifierFromKey(accessKey)).checkpoint.size).toBe(2);

    // Who read entry 0? Proven by the access log's own index (it catches up within seconds).
    const vkey = join(data, "access.vkey");
    const ask = () =>
      runVellum([
        "access",
        "--entry",
        "0",
        "--url",
        server.url,
        "--token",
        token,
        "--key",
        vkey,
        "--json",
      ]);
    // biome-ignore lint/suspicious/noExplicitAny: JSON lines, read by path in the assertions
    let lines: Record<string, any>[] = [];
    for (let i = 0; i < 40; i++) {
      const r = ask();
      expect(r.code, r.stderr).toBe(0);
      lines = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      if (lines.length > 1) break;
      await new Promise((done) => setTimeout(done, 250));
    }
    const summary = lines.pop()!;
    expect(summary).toMatchObject({ complete: true, records: 1 });
    expect(lines[0]!.event.actor.user.name).toBe("admin (first start)");
    // A read token limited to a tenant, from the command line: its limits travel with it.
    const made = runVellum([
      "tokens",
      "create",
      "--name",
      "acme reader",
      "--scopes",
      "read",
      "--tenants",
      "acme",
      "--url",
      server.url,
      "--token",
      token,
      "--json",
    ]);
    expect(made.code, made.stderr).toBe(0);
    const acme = JSON.parse(made.stdout) as { token: string; tenants: string[] };
    expect(acme.tenants).toEqual(["acme"]);
    const opaque = await fetch(`${server.url}/v1/entries/0`, {
      headers: { Authorization: `Bearer ${acme.token}` },
    });
    expect(opaque.status).toBe(403);
    const refused = runVellum(["access", "--url", server.url, "--token", token, "--key", vkey]);
    expect(refused.code).toBe(2);
    expect((await server.stop()).code).toBe(0);
  });
});
