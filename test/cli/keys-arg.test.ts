/**
 * Verifier keys on the command line (src/cli/keys-arg.ts): the key's text and a file holding it
 * are the same to every command that takes one — the helper itself, then the real `verify`,
 * `inspect`, `monitor` and `witness --trust` against a real `vellum serve` on 127.0.0.1, each
 * given the key both ways; a value that is neither is refused with one line naming both attempts.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readKeyArg, readKeysArg } from "../../src/cli/keys-arg.js";
import {
  generateKey,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  type SignatureType,
} from "../../src/core/keys.js";
import { runVellum } from "../helpers/cli.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";

const dir = mkdtempSync(join(tmpdir(), "vellum-keys-arg-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vkeyOf = (name: string, type: SignatureType = SIG_TYPE_ED25519) =>
  generateKey(name, randomBytes(32), type).verifierKey;
const logA = vkeyOf("a.example/log");
const logB = vkeyOf("b.example/log");
const witness = vkeyOf("w.example/w1", SIG_TYPE_COSIGNATURE);

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("readKeyArg / readKeysArg", () => {
  it("takes the key's text, or a file holding it (trailing newline, comments, CRLF)", () => {
    expect(readKeyArg(logA)).toBe(logA);
    expect(readKeyArg(` ${logA}\n`)).toBe(logA);
    expect(readKeyArg(file("a.vkey", `${logA}\n`))).toBe(logA);
    expect(readKeyArg(file("a-crlf.vkey", `# the log\r\n\r\n${logA}\r\n`))).toBe(logA);
    expect(readKeysArg(logA, "--trust")).toEqual([logA]);
    expect(readKeysArg(file("two.vkeys", `${logA}\n# b\n${logB}\n`), "--trust")).toEqual([
      logA,
      logB,
    ]);
  });

  it("refuses what is neither, naming both attempts, and a file with another count of keys", () => {
    const missing = join(dir, "nope.vkey");
    expect(() => readKeyArg(missing)).toThrow(
      /--key ".*nope\.vkey" is neither a verifier key \(.+\) nor a readable file \(ENOENT\)/,
    );
    // The key's last base64 character changed (always to another one: "AA" in place of the last two
    // was the same key once in 4,096 runs): its key id no longer matches.
    const altered = `${logA.slice(0, -1)}${logA.endsWith("A") ? "B" : "A"}`;
    expect(() => readKeyArg(altered)).toThrow(/neither a verifier key/);
    expect(() => readKeyArg(file("junk.vkey", "hello\n"))).toThrow(
      /junk\.vkey: line 1 is not a verifier key/,
    );
    expect(() => readKeyArg(file("empty.vkey", "# nothing\n\n"))).toThrow(/holds no verifier key/);
    expect(() => readKeyArg(join(dir, "two.vkeys"))).toThrow(/holds 2 keys; this option takes one/);
    for (const bad of [missing, join(dir, "junk.vkey"), join(dir, "two.vkeys")]) {
      expect(() => readKeyArg(bad)).toThrow(expect.objectContaining({ code: "BAD_KEY" }));
    }
  });

  it("with a type, refuses a key of the other type by name", () => {
    expect(readKeyArg(witness, "--key", SIG_TYPE_COSIGNATURE)).toBe(witness);
    expect(() => readKeyArg(witness, "--key", SIG_TYPE_ED25519)).toThrow(
      /--key: w\.example\/w1 is a witness key \(type 0x04\); this option wants a log key \(type 0x01\)/,
    );
    expect(() =>
      readKeysArg(file("mixed.vkeys", `${logA}\n${witness}\n`), "--trust", SIG_TYPE_ED25519),
    ).toThrow(/--trust: w\.example\/w1 is a witness key/);
  });
});

describe("every command that takes a verifier key takes it both ways", () => {
  const data = join(dir, "data");
  const vkeyFile = join(data, "log.vkey");
  let server: VellumProcess;
  let vkey: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startVellum(["serve", "--data", data, "--port", "0"], "/readyz");
    vkey = readKeyArg(vkeyFile);
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

  it("verify, inspect and monitor: the path and the text alike; neither: one line, exit 1", () => {
    const receipt = join(dir, "r.tlog-proof");
    const s = vellum(["submit", "-", "--out", receipt], "an entry");
    expect(s.code, s.stderr).toBe(0);
    const token = vellum(["tokens", "create", "--name", "auditor", "--scopes", "read"]);
    expect(token.code, token.stderr).toBe(0);
    const commands: [string, string[], RegExp][] = [
      ["verify", ["verify", receipt], /^verified at index 0 in tree of size 1 /],
      ["inspect", ["inspect", "--url", server.url], /checkpoint verified with /],
      [
        "monitor",
        ["monitor", "--url", server.url, "--once", "--token", token.stdout.trim()],
        /up to date at size 1|verified size 1/,
      ],
    ];
    for (const [name, args, ok] of commands) {
      for (const key of [vkeyFile, vkey]) {
        const r = vellum([...args, "--key", key]);
        expect(r.code, `${name} --key ${key}: ${r.stderr}`).toBe(0);
        expect(r.stdout, name).toMatch(ok);
      }
      const bad = vellum([...args, "--key", join(dir, "log.vkey.missing")]);
      expect(bad.code, name).toBe(2); // a usage error (src/cli/exit-codes.ts)
      expect(bad.stderr.trim().split("\n"), name).toHaveLength(1);
      expect(bad.stderr, name).toMatch(
        /BAD_KEY: --key ".*log\.vkey\.missing" is neither a verifier key \(.+\) nor a readable file \(ENOENT\)/,
      );
    }
  });

  it("witness --trust: a key's text, a file with one, and a file with several", async () => {
    const several = file("trusted.vkeys", `# logs this witness cosigns\n${logA}\n${logB}\n`);
    const w = await startVellum(
      [
        "witness",
        "--data",
        join(dir, "witness"),
        "--port",
        "0",
        "--trust",
        vkeyFile,
        "--trust",
        several,
        "--trust",
        vkeyOf("c.example/log"),
      ],
      "/healthz",
    );
    try {
      expect(w.stdout()).toMatch(/trusting 4 log\(s\): .*a\.example\/log.*b\.example\/log/);
      expect(w.stdout()).toContain(vkey.split("+")[0]!);
    } finally {
      await w.stop();
    }
    const bad = vellum(["witness", "--data", join(dir, "w2"), "--port", "0", "--trust", witness]);
    expect(bad.code).toBe(2); // a usage error
    expect(bad.stderr).toMatch(/BAD_KEY: --trust: w\.example\/w1 is a witness key/);
  });
});
