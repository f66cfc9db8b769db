/**
 * `vellum serve --store postgres://…` against a real PostgreSQL (`scripts/services.sh up
 * postgres`): the log, its tokens and the rest live in the database; a second server on the same
 * database and origin is refused while the first runs (one writer); another data directory
 * holding the same key then serves the same log, and the first server's token works there.
 */
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runVellum } from "../helpers/cli.js";
import { spawnVellum, startVellum } from "../helpers/processes.js";
import { needService } from "../helpers/services.js";

const env = needService("postgres", ["VELLUM_PG_URL"]);
const dir = mkdtempSync(join(tmpdir(), "vellum-pg-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(env === undefined)("vellum serve --store postgres://", () => {
  it("keeps the log and its tokens in PostgreSQL, with one writer at a time", {
    timeout: 120_000,
  }, async () => {
    const url = env!.VELLUM_PG_URL!;
    // A fresh origin: a fresh set of schemas in the shared test database.
    const origin = `pg-${randomBytes(4).toString("hex")}.e2e.test/log`;
    const first = join(dir, "first");
    const serve = (data: string) =>
      startVellum(
        ["serve", "--data", data, "--port", "0", "--origin", origin, "--store", url],
        "/readyz",
      );
    let server = await serve(first);
    expect(server.output()).toMatch(
      /state in PostgreSQL at 127\.0\.0\.1:\d+\/vellum \(schemas vellum_pg_/,
    );
    expect(server.output()).not.toMatch(/postgres:\/\//); // the URL (and any password) is not logged
    const token = readFileSync(join(first, "admin.token"), "utf8").trim();
    const lines = join(dir, "lines.jsonl");
    writeFileSync(lines, Array.from({ length: 300 }, (_, i) => `{"n":${i}}\n`).join(""));
    const sub = runVellum(["submit", "--lines", lines, "--url", server.url, "--token", token]);
    expect(sub.code, sub.stderr).toBe(0);
    const receipt = join(dir, "one.tlog-proof");
    const one = runVellum(["submit", "--url", server.url, "--token", token, "--out", receipt], {
      input: "invoice 42 paid",
    });
    expect(one.code, one.stderr).toBe(0);

    // A second data directory with the same key: refused while the first one writes.
    const second = join(dir, "second");
    mkdirSync(second, { mode: 0o700 });
    copyFileSync(join(first, "log.key"), join(second, "log.key"));
    const refused = spawnVellum([
      "serve",
      ...["--data", second, "--port", "0", "--origin", origin, "--store", url],
    ]);
    const ended = await refused.exited;
    expect(ended.code).not.toBe(0);
    expect(refused.output()).toMatch(/another vellum serve is the writer of/);
    expect((await server.stop()).code).toBe(0);

    // Now the second serves the same log, and the first one's token works there.
    server = await serve(second);
    const cp = await (await fetch(`${server.url}/checkpoint`)).text();
    expect(cp.split("\n")[1]).toBe("301");
    const entry = await fetch(`${server.url}/v1/entries/299`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(entry.status).toBe(200);
    const body = (await entry.json()) as { index: number; payload: string };
    expect(body.index).toBe(299);
    expect(Buffer.from(body.payload, "base64").toString()).toBe('{"n":299}');
    // A receipt the first server gave verifies with the key the second one holds.
    writeFileSync(join(dir, "one.txt"), "invoice 42 paid");
    const verify = runVellum([
      "verify",
      receipt,
      ...["--key", join(second, "log.vkey"), "--entry", join(dir, "one.txt")],
    ]);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);
    expect((await server.stop()).code).toBe(0);
  });
});
