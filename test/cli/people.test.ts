/**
 * The commands people use, against a real `vellum serve` on 127.0.0.1: submit prints a receipt;
 * verify accepts it offline (with the entry too) and refuses each kind of tampering with a
 * one-line reason; keygen writes a private key with mode 0600; inspect and tokens work; submit
 * --lines logs a JSON Lines file line by line, with a receipt per line, idempotently, and verify
 * --lines checks them all against the file (and refuses swapped, missing or broken receipts).
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { base64Decode, base64Encode } from "../../src/core/bytes.js";
import { decodeLeafFields, encodeLeafFields } from "../../src/core/entry.js";
import { parseVerifierKey } from "../../src/core/keys.js";
import { runVellum } from "../helpers/cli.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-people-"));
const data = join(dir, "data");
let server: VellumProcess;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startVellum(["serve", "--data", data, "--port", "0"], "/readyz");
  env = { VELLUM_URL: server.url, VELLUM_DATA: data };
});
afterAll(async () => {
  await server?.stop();
});

function vellum(args: string[], input?: string) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return runVellum(args, input === undefined ? {} : { input });
  } finally {
    process.env = saved;
  }
}

describe("vellum submit / verify", () => {
  it("submits from stdin and from a file; verify says where, and checks the entry", () => {
    const entry = join(dir, "entry.json");
    writeFileSync(entry, '{"user":"alice","action":"login"}\n');
    const receipt = join(dir, "entry.tlog-proof");
    const sub = vellum(["submit", entry, "--out", receipt]);
    expect(sub.code, sub.stderr).toBe(0);
    expect(sub.stderr).toMatch(/logged: index 0/);
    const fromStdin = vellum(["submit", "-"], "second entry");
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.stdout).toMatch(/^c2sp\.org\/tlog-proof@v1\n/);

    const key = join(data, "log.vkey");
    const ok = vellum(["verify", receipt, "--key", key, "--entry", entry]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(
      /^verified at index 0 in tree of size 1 of .*, for exactly this entry/,
    );
    const inline = vellum(["verify", receipt, "--key", readFileSync(key, "utf8").trim()]);
    expect(inline.code).toBe(0);

    const other = join(dir, "other.json");
    writeFileSync(other, '{"user":"mallory","action":"login"}\n');
    const wrong = vellum(["verify", receipt, "--key", key, "--entry", other]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
    expect(wrong.stderr).toMatch(/PROOF_MISMATCH: the entry does not match the receipt/);
  });

  it("refuses every byte class of a tampered receipt with the right reason", () => {
    for (let i = 0; i < 6; i++) expect(vellum(["submit", "-"], `filler ${i}`).code).toBe(0);
    const r = vellum(["submit", "-"], "target");
    expect(r.code).toBe(0);
    for (let i = 0; i < 6; i++) expect(vellum(["submit", "-"], `more ${i}`).code).toBe(0);
    const text = r.stdout;
    const key = join(data, "log.vkey");
    const lines = text.split("\n");
    const flip = (b64: string, at: number) => {
      const bytes = base64Decode(b64);
      bytes[at % bytes.length]! ^= 0x10;
      return base64Encode(bytes);
    };
    const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    const edit = (i: number, f: (l: string) => string) =>
      lines.map((l, k) => (k === i ? f(l) : l)).join("\n");
    const cpStart = lines.indexOf("", at("index ")) + 1;
    const logSig = at("— ");
    const cases: [string, string, RegExp][] = [
      [
        "index",
        edit(at("index "), (l) => `index ${Number(l.slice(6)) + 7}`),
        /OUT_OF_RANGE|PROOF_/,
      ],
      ["a proof hash", edit(at("index ") + 1, (l) => flip(l, 5)), /PROOF_MISMATCH/],
      ["the checkpoint body", edit(cpStart + 2, (l) => flip(l, 1)), /BAD_SIGNATURE/],
      [
        "the log signature",
        edit(logSig, (l) => l.replace(/ (\S+)$/, (_m, s: string) => ` ${flip(s, 20)}`)),
        /BAD_SIGNATURE/,
      ],
      [
        "the timestamp signature",
        edit(logSig + 1, (l) => l.replace(/ (\S+)$/, (_m, s: string) => ` ${flip(s, 30)}`)),
        /BAD_SIGNATURE/,
      ],
      // Byte 60 of a version-2 extra is in the leaf hash (after 47 bytes of fields and its head).
      ["the extra", edit(at("extra "), (l) => `extra ${flip(l.slice(6), 60)}`), /PROOF_MISMATCH/],
      ["the header", text.replace("tlog-proof@v1", "tlog-proof@v2"), /MALFORMED/],
    ];
    for (const [what, tampered, reason] of cases) {
      const file = join(dir, `tampered-${what.replace(/\W/g, "-")}`);
      writeFileSync(file, tampered);
      const v = vellum(["verify", file, "--key", key]);
      expect(v.code, what).toBe(1);
      expect(v.stderr, what).toMatch(reason);
      expect(v.stderr.trim().split("\n"), what).toHaveLength(1);
    }
    // A cosignature can only be tampered with when there is a policy; see the witness e2e test.

    // The submitter is in the leaf: with the entry, a receipt claiming another one is refused.
    const extraLine = lines[at("extra ")]!;
    const fields = decodeLeafFields(base64Decode(extraLine.slice(6)));
    expect(fields.submitter).toMatch(/^[0-9a-f]{16}$/);
    const other = encodeLeafFields({ ...fields, submitter: "0000000000000000" });
    const forged = join(dir, "tampered-submitter");
    writeFileSync(forged, text.replace(extraLine, `extra ${base64Encode(other)}`));
    const entry = join(dir, "target.txt");
    writeFileSync(entry, "target");
    const good = vellum(["verify", "-", "--key", key, "--entry", entry], text);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain(`submitted by token ${fields.submitter})`);
    const v = vellum(["verify", forged, "--key", key, "--entry", entry]);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/PROOF_MISMATCH: the entry does not match the receipt/);
  });
});

describe("vellum keygen / inspect / tokens", () => {
  it("keygen writes a 0600 private key and prints its verifier key", () => {
    const out = join(dir, "w1.key");
    const k = vellum(["keygen", "--name", "witness.example/w1", "--type", "witness", "--out", out]);
    expect(k.code, k.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(parseVerifierKey(k.stdout.trim())).toMatchObject({
      name: "witness.example/w1",
      type: 4,
    });
    expect(readFileSync(out, "utf8")).toMatch(/^PRIVATE\+KEY\+witness\.example\/w1\+/);
    expect(vellum(["keygen", "--name", "bad name"]).code).toBe(2); // a usage error
  });

  it("inspect verifies and shows the checkpoint; tokens create, list and revoke", async () => {
    const i = vellum(["inspect", "--key", join(data, "log.vkey")]);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toMatch(/checkpoint verified with/);
    expect(i.stdout).toMatch(/^dedup {5}by idempotency key only$/m);
    const made = vellum(["tokens", "create", "--name", "ingest", "--scopes", "append"]);
    expect(made.code, made.stderr).toBe(0);
    const secret = made.stdout.trim();
    expect(secret).toMatch(/^vellum_/);
    const id = /created token ([0-9a-f]{16})/.exec(made.stderr)![1]!;
    expect(vellum(["tokens", "list"]).stdout).toMatch(new RegExp(`${id}  active`));
    // Each POST on a connection of its own: the CLI runs in between (spawnSync) block this event
    // loop, so a pooled keep-alive connection the server closed meanwhile would go unnoticed and
    // fail the next request with "other side closed".
    const post = (t: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${server.url}/v1/entries`,
          { method: "POST", agent: false, headers: { Authorization: `Bearer ${t}` } },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode!));
          },
        );
        req.on("error", reject);
        req.end("via token");
      });
    expect(await post(secret)).toBe(201);
    expect(vellum(["tokens", "revoke", id]).code).toBe(0);
    expect(await post(secret)).toBe(401);
  });
});

describe("vellum submit --lines", () => {
  it("logs each line as an entry, prints a verifiable receipt per line, and re-imports nothing twice", () => {
    const events = join(dir, "audit.jsonl");
    const lines = [
      '{"user":"alice","action":"login","at":1}',
      '{"user":"bob","action":"export","at":2}',
      "",
      '{"user":"carol","action":"delete","at":3}',
    ];
    // CRLF on one line, a blank line, no newline at the end: all handled byte for byte.
    writeFileSync(events, `${lines[0]}\r\n${lines.slice(1).join("\n")}`);
    const out = join(dir, "audit.receipts.jsonl");
    const first = vellum([
      "submit",
      "--lines",
      events,
      "--out",
      out,
      "--idempotency-key",
      "import-1",
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/^3 entries: 3 logged, 0 already in the log; tree size \d+/);
    const rows = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => r.line)).toEqual([1, 2, 4]);
    expect(rows.every((r) => r.duplicate === false)).toBe(true);
    const key = join(data, "log.vkey");
    for (const [k, row] of rows.entries()) {
      const receipt = join(dir, `line-${row.line}.tlog-proof`);
      writeFileSync(receipt, row.receipt);
      const entry = join(dir, `line-${row.line}.json`);
      writeFileSync(entry, [lines[0], lines[1], lines[3]][k]!);
      const v = vellum(["verify", receipt, "--key", key, "--entry", entry]);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toMatch(new RegExp(`^verified at index ${row.index} `));
    }
    // All receipts at once, each against its line of the submitted file.
    const all = vellum(["verify", "--lines", out, "--entry", events, "--key", key]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^verified 3 receipts of .*, each for exactly its line of /);
    // A receipt moved to another line's entry, a line without a receipt, a broken receipt: refused.
    const text = readFileSync(out, "utf8").trim().split("\n");
    const swapped = join(dir, "swapped.jsonl");
    writeFileSync(
      swapped,
      [{ ...rows[0], line: 2 }, { ...rows[1], line: 1 }, rows[2]]
        .map((r) => JSON.stringify(r))
        .join("\n"),
    );
    const bad = vellum(["verify", "--lines", swapped, "--entry", events, "--key", key]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/swapped\.jsonl line 1 \(entry line 2\)/);
    const partial = join(dir, "partial.jsonl");
    writeFileSync(partial, text.slice(0, 2).join("\n"));
    const gap = vellum(["verify", "--lines", partial, "--entry", events, "--key", key]);
    expect(gap.code).not.toBe(0);
    expect(gap.stderr).toMatch(/1 line\(s\) of .* have no receipt here, the first is line 4/);
    const broken = join(dir, "broken.jsonl");
    writeFileSync(broken, `${text[0]}\nnot json\n`);
    expect(vellum(["verify", "--lines", broken, "--key", key]).stderr).toMatch(/line 2: not JSON/);
    expect(vellum(["verify", "--lines", partial, "--key", key]).code).toBe(0);
    const shapeless = join(dir, "shapeless.jsonl");
    writeFileSync(shapeless, '{"receipt": 7}\n');
    expect(vellum(["verify", "--lines", shapeless, "--key", key]).stderr).toMatch(
      /line 1: needs "line" \(a number\) and "receipt"/,
    );
    const none = join(dir, "none.jsonl");
    writeFileSync(none, "\n\n");
    expect(vellum(["verify", "--lines", none, "--key", key]).stderr).toMatch(/holds no receipts/);

    // The same import again: every line is answered with its original entry.
    const again = vellum(["submit", "--lines", events, "--idempotency-key", "import-1"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/^3 entries: 0 logged, 3 already in the log/);
    const rows2 = again.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rows2.map((r) => r.index)).toEqual(rows.map((r) => r.index));

    // A line over the entry limit: refused before anything is sent, naming the line.
    const big = join(dir, "big.jsonl");
    writeFileSync(big, `{"ok":1}\n${"x".repeat(70_000)}\n`);
    const refused = vellum(["submit", "--lines", big]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/line 2 is 70000 bytes/);
    const empty = join(dir, "empty.jsonl");
    writeFileSync(empty, "\n\n");
    expect(vellum(["submit", "--lines", empty]).stderr).toMatch(/every line is empty/);
  });
});
