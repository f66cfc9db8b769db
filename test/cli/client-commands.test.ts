/**
 * The client commands as a script sees them, through the real `vellum` CLI against a real
 * `vellum serve` on 127.0.0.1: one way to connect (VELLUM_URL, --token / --token-file /
 * VELLUM_TOKEN, flags over the environment; a missing token file is a usage error naming it),
 * documented exit codes (0 ok, 1 verification failed, 2 usage, 3 evidence, 4 I/O or network) in
 * every --help, `--json` output that parses, errors that say what happened (a malformed URL at
 * once, an entry over the limit before sending, a file that is not a receipt, every failing line
 * of a receipts file, JSON Lines checked before anything is logged), and tokens with unique
 * names, expiry and a last-used time.
 */

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_PAYLOAD_SIZE } from "../../src/core/entry.js";
import { apiActivity } from "../audit/events.js";
import { REPO_ROOT, VELLUM_BIN } from "../helpers/cli.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-client-cli-"));
const data = join(dir, "data");
let server: VellumProcess;
let key: string;

beforeAll(async () => {
  server = await startVellum(["serve", "--data", data, "--port", "0"], "/readyz");
  key = join(data, "log.vkey");
});
afterAll(async () => {
  await server?.stop();
});

/**
 * Runs `vellum args` with exactly this environment (plus PATH): VELLUM_URL and VELLUM_DATA point
 * at the test's server unless `env` says otherwise; nothing leaks in from the test's own.
 */
function vellum(args: string[], env: Record<string, string | undefined> = {}, input?: string) {
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    NO_COLOR: "1",
    VELLUM_URL: server.url,
    VELLUM_DATA: data,
  };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  const r = spawnSync(process.execPath, [VELLUM_BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    input,
    timeout: 60_000,
    env: base,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const treeSize = () => {
  const r = vellum(["inspect", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { treeSize: number }).treeSize;
};

describe("exit codes", () => {
  it("every client command lists its exit codes in --help", () => {
    for (const command of [
      ["submit"],
      ["verify"],
      ["inspect"],
      ["monitor"],
      ["keygen"],
      ["tokens"],
      ["tokens", "create"],
      ["tokens", "list"],
      ["tokens", "revoke"],
      [],
    ]) {
      const r = vellum([...command, "--help"]);
      expect(r.code, command.join(" ")).toBe(0);
      expect(r.stdout, command.join(" ")).toMatch(/Exit codes:\n {2}0 {2}done/);
      expect(r.stdout, command.join(" ")).toMatch(/ {2}2 {2}usage error/);
    }
    const top = vellum(["--help"]).stdout;
    for (const code of [1, 3, 4]) expect(top).toMatch(new RegExp(` {2}${code} {2}\\S`));
  });

  it("an unknown option or a missing argument is a usage error (2)", () => {
    expect(vellum(["submit", "--no-such-flag"]).code).toBe(2);
    expect(vellum(["verify"]).code).toBe(2);
  });
});

describe("one way to connect", () => {
  it("a malformed URL is a usage error at once, from --url or VELLUM_URL", () => {
    const flag = vellum(["submit", "--url", "localhost:6962", "-"], {}, "an event");
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--url: "localhost:6962" is not a server URL/);
    const env = vellum(["inspect"], { VELLUM_URL: "127.0.0.1:6962" });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/VELLUM_URL: "127\.0\.0\.1:6962" is not a server URL/);
    const tokens = vellum(["tokens", "list", "--url", "nonsense"]);
    expect(tokens.code).toBe(2);
    const monitor = vellum(["monitor", "--key", key, "--once"], { VELLUM_URL: "nonsense" });
    expect(monitor.code).toBe(2);
  });

  it("a --token-file that does not exist is an error naming it, on every command", () => {
    const missing = join(dir, "no-such.token");
    for (const args of [
      ["submit", "-"],
      ["inspect"],
      ["tokens", "list"],
      ["monitor", "--key", key, "--once"],
    ]) {
      const r = vellum([...args, "--token-file", missing], {}, "an event");
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain(
        `--token-file ${missing}: cannot read it (ENOENT)`,
      );
    }
    const empty = file("empty.token", "\n");
    expect(vellum(["tokens", "list", "--token-file", empty]).stderr).toMatch(/the file is empty/);
  });

  it("flags win over VELLUM_TOKEN, which wins over the data folder's admin token", () => {
    const admin = readFileSync(join(data, "admin.token"), "utf8").trim();
    const adminFile = join(data, "admin.token");
    const wrong = "vellum_wrongwrongwrongwrongwrongwrongwrongwrong123";
    // The admin token from DATA/admin.token by default.
    expect(vellum(["tokens", "list"]).code).toBe(0);
    // VELLUM_TOKEN over the default file: refused, and the message says which token it was.
    const envWrong = vellum(["tokens", "list"], { VELLUM_TOKEN: wrong });
    expect(envWrong.code).toBe(2);
    expect(envWrong.stderr).toMatch(/UNAUTHENTICATED: .*the token from VELLUM_TOKEN was refused/);
    // --token-file and --token over VELLUM_TOKEN.
    expect(
      vellum(["tokens", "list", "--token-file", adminFile], { VELLUM_TOKEN: wrong }).code,
    ).toBe(0);
    expect(vellum(["tokens", "list", "--token", admin], { VELLUM_TOKEN: wrong }).code).toBe(0);
    expect(vellum(["tokens", "--token", admin, "list"], { VELLUM_TOKEN: wrong }).code).toBe(0);
    const both = vellum(["tokens", "list", "--token", admin, "--token-file", adminFile]);
    expect(both.code).toBe(2);
    // submit honours them the same way.
    const submitted = vellum(
      ["submit", "-", "--token", admin, "--json"],
      { VELLUM_TOKEN: wrong },
      '{"a":1}',
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    // VELLUM_URL is honoured by every networked command (none is given --url here).
    expect(vellum(["inspect"]).code).toBe(0);
  });

  it("a server that cannot be reached is an I/O error (4)", () => {
    const r = vellum(["inspect"], { VELLUM_URL: "http://127.0.0.1:1" });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/NETWORK: cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});

describe("submit", () => {
  it("--json prints one document; a receipt of a log without witnesses is not witnessed", () => {
    const r = vellum(["submit", "-", "--json"], {}, '{"user":"dave","action":"login"}');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({ duplicate: false, witnessed: false });
    expect(doc.receipt).toMatch(/^c2sp\.org\/tlog-proof@v1\n/);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toMatch(/witnessed/);
  });

  it("an entry over the size limit is refused before anything is sent (2)", () => {
    const before = treeSize();
    const big = file("big.json", `"${"x".repeat(MAX_PAYLOAD_SIZE)}"`);
    const r = vellum(["submit", big]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `the entry is ${MAX_PAYLOAD_SIZE + 2} bytes; an entry holds at most ${MAX_PAYLOAD_SIZE} \\(nothing was submitted\\)`,
      ),
    );
    expect(treeSize()).toBe(before);
  });

  it("--lines refuses lines that are not JSON before logging anything, unless --raw", () => {
    const before = treeSize();
    const mixed = file("mixed.jsonl", '{"ok":1}\nnot json\n{"ok":2}\n{"broken":\n');
    const r = vellum(["submit", "--lines", mixed]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lines 2, 4 are not JSON \(line 2: .*\); nothing was submitted/);
    expect(r.stderr).toMatch(/add --raw/);
    expect(treeSize()).toBe(before);

    const raw = vellum(["submit", "--lines", "--raw", mixed, "--json"]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(
      raw.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).line),
    ).toEqual([1, 2, 3, 4]);
    expect(JSON.parse(raw.stderr)).toMatchObject({ entries: 4, logged: 4, duplicates: 0 });
    expect(treeSize()).toBe(before + 4);
    expect(vellum(["submit", "--raw", mixed]).code).toBe(2);
  });

  it("--lines skips whitespace-only lines, as its help says", () => {
    const events = file(
      "blanks.jsonl",
      '{"e":"blank-test-1"}\n   \n\t\r\n{"e":"blank-test-2"}\n \n',
    );
    const out = join(dir, "blanks.receipts.jsonl");
    const r = vellum(["submit", "--lines", events, "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^2 entries: 2 logged/);
    const rows = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows.map((row) => row.line)).toEqual([1, 4]);
    const v = vellum(["verify", "--lines", out, "--entry", events, "--key", key]);
    expect(v.code, v.stderr).toBe(0);
  });
});

describe("verify", () => {
  let receipt: string;
  let entry: string;
  beforeAll(() => {
    entry = file("v-entry.json", '{"user":"erin","action":"login"}');
    receipt = join(dir, "v.tlog-proof");
    const r = vellum(["submit", entry, "--out", receipt]);
    expect(r.code, r.stderr).toBe(0);
  });

  it("--json on success and on failure", () => {
    const ok = vellum(["verify", receipt, "--key", key, "--entry", entry, "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ verified: true, payloadChecked: true });
    const other = file("v-other.json", '{"user":"mallory"}');
    const bad = vellum(["verify", receipt, "--key", key, "--entry", other, "--json"]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({
      verified: false,
      error: { code: "PROOF_MISMATCH" },
    });
  });

  it("a file that is not a receipt says so, and suggests --lines for a receipts file", () => {
    const text = file("notes.txt", "hello, this is not a receipt\n");
    const r = vellum(["verify", text, "--key", key]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `vellum: MALFORMED: ${text} is not a receipt: a receipt (C2SP tlog-proof) starts with the line "c2sp.org/tlog-proof@v1"`,
    );
    const jsonl = file("some.receipts.jsonl", `${JSON.stringify({ line: 1, receipt: "x" })}\n`);
    const l = vellum(["verify", jsonl, "--key", key]);
    expect(l.code).toBe(1);
    expect(l.stderr).toMatch(/is not a receipt: it looks like JSON Lines; .* add --lines/);
    const single = vellum(["verify", "--lines", receipt, "--key", key]);
    expect(single.code).toBe(1);
    expect(single.stderr).toMatch(
      /is a single receipt, not a receipts file: verify it without --lines/,
    );
    // A key that is not a key, a file that is not there: usage errors.
    expect(vellum(["verify", receipt, "--key", "nonsense"]).code).toBe(2);
    const gone = vellum(["verify", join(dir, "gone.tlog-proof"), "--key", key]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/cannot read the receipt .*gone\.tlog-proof \(ENOENT\)/);
  });

  it("--lines reports every failing line, not only the first", () => {
    const events = file(
      "many.jsonl",
      ["a", "b", "c", "d", "e"].map((x) => `{"k":"${x}-many"}`).join("\n"),
    );
    const out = join(dir, "many.receipts.jsonl");
    expect(vellum(["submit", "--lines", events, "--out", out]).code).toBe(0);
    const rows = readFileSync(out, "utf8").trim().split("\n");
    // Line 2's receipt moved to entry line 3 (so no line 2 or 3 is proven), line 3's replaced by
    // a broken line, line 5's missing.
    const moved = { ...JSON.parse(rows[1]!), line: 3 };
    const damaged = [rows[0], JSON.stringify(moved), "not json", rows[3]].join("\n");
    const bad = file("many.damaged.jsonl", damaged);
    const r = vellum(["verify", "--lines", bad, "--entry", events, "--key", key]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/many\.damaged\.jsonl line 2 \(entry line 3\): PROOF_MISMATCH/);
    expect(lines[1]).toMatch(/many\.damaged\.jsonl line 3: not JSON/);
    expect(lines[2]).toMatch(
      /3 line\(s\) of .* have no receipt here, the first is line 2 \(lines 2, 3, 5\)/,
    );
    expect(lines[3]).toMatch(/2 of 4 receipts verified; 3 failure\(s\)/);
    expect(lines).toHaveLength(4);

    const j = vellum(["verify", "--lines", bad, "--entry", events, "--key", key, "--json"]);
    expect(j.code).toBe(1);
    const doc = JSON.parse(j.stdout);
    expect(doc).toMatchObject({
      verified: false,
      receipts: 4,
      verifiedReceipts: 2,
      missingLines: [2, 3, 5],
    });
    expect(doc.failures.map((f: { line: number | null }) => f.line)).toEqual([2, 3, null]);
    const good = vellum(["verify", "--lines", out, "--entry", events, "--key", key, "--json"]);
    expect(good.code, good.stderr).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({
      verified: true,
      verifiedReceipts: 5,
      failures: [],
    });
  });
});

describe("inspect and monitor --json", () => {
  it("inspect prints one document; a wrong key is a verification failure (1)", () => {
    const r = vellum(["inspect", "--key", key, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ verified: true, status: expect.any(String) });
    expect(doc.checkpoint).toContain(`\n${doc.treeSize}\n`);
    const otherKey = join(dir, "other.vkey");
    const made = vellum([
      "keygen",
      "--name",
      "other.example/log",
      "--out",
      join(dir, "other.key"),
      "--json",
    ]);
    expect(made.code).toBe(0);
    writeFileSync(otherKey, `${JSON.parse(made.stdout).verifierKey}\n`);
    const wrong = vellum(["inspect", "--key", otherKey]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/the log's checkpoint does not verify with --key/);
  });

  it("monitor --json writes JSON Lines events", () => {
    const admin = readFileSync(join(data, "admin.token"), "utf8").trim();
    const r = vellum(["monitor", "--key", key, "--once", "--json", "--state", join(dir, "mon")], {
      VELLUM_TOKEN: admin,
    });
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ event: "start", verifiedSize: 0 });
    expect(events.at(-1)).toMatchObject({ event: "verified", size: treeSize() });
    // Without a token, the entries are refused: a usage error (2), said as an event too.
    const refused = vellum(["monitor", "--key", key, "--once", "--json"]);
    expect(refused.code).toBe(2);
    expect(
      refused.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .at(-1),
    ).toMatchObject({
      event: "error",
      code: "UNAUTHENTICATED",
      exitCode: 2,
    });
  });
});

describe("tokens", () => {
  it("create/list/revoke --json; a name in use is refused; --expires; last used", () => {
    const made = vellum([
      "tokens",
      "create",
      "--name",
      "cli-ingest",
      "--scopes",
      "append,read",
      "--json",
    ]);
    expect(made.code, made.stderr).toBe(0);
    const token = JSON.parse(made.stdout);
    expect(token).toMatchObject({
      name: "cli-ingest",
      expires: null,
      revoked: null,
      lastUsed: null,
    });
    expect(token.token).toMatch(/^vellum_/);

    const again = vellum(["tokens", "create", "--name", "cli-ingest"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/CONFLICT: HTTP 409: a token named "cli-ingest" exists/);

    const start = Date.now();
    const expiring = vellum([
      "tokens",
      "create",
      "--name",
      "cli-auditor",
      "--scopes",
      "read",
      "--expires",
      "30d",
      "--json",
    ]);
    expect(expiring.code, expiring.stderr).toBe(0);
    const expires = JSON.parse(expiring.stdout).expires as number;
    expect(expires).toBeGreaterThanOrEqual(start + 30 * 86_400_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000);
    for (const bad of ["soon", "0d", "2020-01-01T00:00:00Z", "30"]) {
      const r = vellum(["tokens", "create", "--name", `bad ${bad}`, "--expires", bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/--expires/);
    }

    // A use of the token shows in the list.
    const used = vellum(["submit", "-", "--token", token.token], {}, '{"by":"cli-ingest"}');
    expect(used.code, used.stderr).toBe(0);
    const list = vellum(["tokens", "list", "--json"]);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout).tokens as {
      id: string;
      lastUsed: number | null;
      expires: number | null;
    }[];
    expect(listed.find((t) => t.id === token.id)!.lastUsed).toBeGreaterThanOrEqual(start);
    expect(vellum(["tokens", "list"]).stdout).toMatch(/ {2}expired|active /);

    const revoked = vellum(["tokens", "revoke", token.id, "--json"]);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: token.id, revoked: expect.any(Number) });
    const unknown = vellum(["tokens", "revoke", "0123456789abcdef"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/NOT_FOUND/);
    // Its name is free again.
    expect(vellum(["tokens", "create", "--name", "cli-ingest"]).code).toBe(0);
  });
});

describe("vellum submit --event", () => {
  const event = (uid: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      ...apiActivity({ metadata: { product: { name: "cli" }, version: "1.8.0", uid } }),
      ...extra,
    });

  it("logs an OCSF event as its canonical bytes, once; a bad field is named with exit 2", () => {
    const path = file("event.json", event("cli-1"));
    const first = vellum(["submit", "--event", path, "--json"]);
    expect(first.code, first.stderr).toBe(0);
    const r = JSON.parse(first.stdout) as { index: number; duplicate: boolean };
    expect(r.duplicate).toBe(false);
    const again = vellum(["submit", "--event", path, "--json"]);
    expect(JSON.parse(again.stdout)).toMatchObject({ index: r.index, duplicate: true });
    const bad = vellum(["submit", "--event", file("bad.json", event("cli-2", { severity_id: 9 }))]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/\/severity_id: 9 is not one of/);
    const notJson = vellum(["submit", "--event", file("nojson.json", "{")]);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/the event is not JSON/);
  });

  it("--lines --event logs one event per line, in order", () => {
    const path = file("events.jsonl", `${event("cli-l1")}\n\n${event("cli-l2")}\n`);
    const out = vellum(["submit", "--lines", "--event", path]);
    expect(out.code, out.stderr).toBe(0);
    const rows = out.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { line: number; index: number });
    expect(rows.map((x) => x.line)).toEqual([1, 3]);
    expect(rows[1]!.index).toBe(rows[0]!.index + 1);
  });
});

describe("vellum query and vellum export", () => {
  // Three events one after another (the server's clock), and one opaque entry among them.
  const logged: { index: number; timestamp: number }[] = [];
  beforeAll(() => {
    const events = [
      apiActivity({ metadata: { product: { name: "q" }, version: "1.8.0", uid: "q-1" } }),
      apiActivity({
        actor: { user: { uid: "carol" } },
        resources: [{ uid: "invoice-7" }],
        metadata: { product: { name: "q" }, version: "1.8.0", uid: "q-2" },
      }),
      apiActivity({
        api: { operation: "DeleteInvoice" },
        metadata: { product: { name: "q" }, version: "1.8.0", uid: "q-3" },
      }),
    ];
    for (const [n, e] of events.entries()) {
      const r = vellum(["submit", "--event", file(`q${n}.json`, JSON.stringify(e)), "--json"]);
      expect(r.code, r.stderr).toBe(0);
      logged.push(JSON.parse(r.stdout) as { index: number; timestamp: number });
      if (n === 0) expect(vellum(["submit", file("opaque.txt", "not json at all")]).code).toBe(0);
    }
  });

  const window = () => [
    "--from",
    String(logged[0]!.timestamp),
    "--to",
    String(logged[2]!.timestamp + 1),
    "--key",
    key,
  ];

  it("answers from the verifiable index, complete, newest first on request", async () => {
    // The index follows the log within about a second: ask until its answer covers the events.
    let r = vellum(["query", "--actor", "alice", "--key", key, "--json"]);
    for (let i = 0; i < 40; i++) {
      expect(r.code, r.stderr).toBe(0);
      const covered = JSON.parse(r.stdout.trim().split("\n").at(-1)!).treeSize as number;
      if (covered > logged[2]!.index) break;
      await new Promise((done) => setTimeout(done, 250));
      r = vellum(["query", "--actor", "alice", "--key", key, "--json"]);
    }
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.pop()!;
    const alice = lines.map((l) => l.index as number);
    expect(alice).toEqual(expect.arrayContaining([logged[0]!.index, logged[2]!.index]));
    expect(summary).toMatchObject({ complete: true, matched: alice.length, proof: "index" });
    const newest = vellum(["query", "--actor", "alice", "--newest-first", "--key", key, "--json"]);
    const back = newest.stdout
      .trim()
      .split("\n")
      .slice(0, -1)
      .map((l) => JSON.parse(l).index);
    expect(back).toEqual([...alice].reverse());
    const windowed = vellum(["query", ...window(), "--actor", "alice", "--resource", "invoice-42"]);
    expect(windowed.code, windowed.stderr).toBe(0);
    expect(windowed.stderr).toMatch(
      /^complete: \d+ matching event\(s\) proven by the index revision/,
    );
    const none = vellum(["query", "--key", key]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--actor, --action, --resource or --tenant/);
  });

  it("answers a filtered window, complete, and only what matches", () => {
    const r = vellum(["query", ...window(), "--actor", "alice", "--scan", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.pop()!;
    expect(lines.map((l) => l.index)).toEqual([logged[0]!.index, logged[2]!.index]);
    expect(summary).toMatchObject({ complete: true, matched: 2 });
    expect(summary.checked).toBeGreaterThanOrEqual(4); // the opaque entry was checked too
    const carol = vellum(["query", ...window(), "--resource", "invoice-7", "--scan"]);
    expect(carol.code).toBe(0);
    expect(carol.stdout.trim().split("\n")).toHaveLength(1);
    expect(carol.stderr).toMatch(/^complete: 1 matching event\(s\) among the \d+ entries/);
  });

  it("exports the window's OCSF events, or every entry as JSON Lines", () => {
    const ocsf = vellum(["export", ...window(), "--format", "ocsf"]);
    expect(ocsf.code, ocsf.stderr).toBe(0);
    const events = ocsf.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { metadata: { uid: string } });
    expect(events.map((e) => e.metadata.uid)).toEqual(["q-1", "q-2", "q-3"]);
    const all = vellum([
      "export",
      ...window(),
      "--format",
      "jsonl",
      "--out",
      join(dir, "window.jsonl"),
    ]);
    expect(all.code, all.stderr).toBe(0);
    const rows = readFileSync(join(dir, "window.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { payload: unknown });
    expect(rows.some((r) => JSON.stringify(r.payload).includes("base64"))).toBe(true);
  });

  it("refuses a bad time and a key of another log", () => {
    expect(vellum(["query", "--from", "yesterday", "--to", "1", "--key", key]).code).toBe(2);
    const other = vellum([
      "query",
      "--from",
      "0",
      "--to",
      "1",
      "--key",
      `other.example/log+01234567+AQ${"A".repeat(42)}=`,
    ]);
    expect(other.code).not.toBe(0);
  });
});
