/**
 * The access log witnessed like the log, with real `vellum` processes on 127.0.0.1: a witness
 * that trusts the log's key and the access log's own key (DATA/access.vkey) cosigns
 * `/access/checkpoint`; reads never wait for it; and a server whose witness does not vouch for
 * the access log refuses reads of entry contents (the access log's rollback check has not
 * passed) until it does.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../../src/core/checkpoint.js";
import { cosignatureVerifierFromKey } from "../../src/core/cosignature.js";
import { verifierFromKey } from "../../src/core/keys.js";
import { runVellum } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";

const ORIGIN = "access-witnessed.e2e.test/log";
const dir = mkdtempSync(join(tmpdir(), "vellum-access-witnessed-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(what: string, predicate: () => Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the witnessed access log", () => {
  it("is cosigned by the policy's witness, and refuses reads until its witnesses answer", {
    timeout: 90_000,
  }, async () => {
    // Both keys exist before the log starts, so the witness can trust them.
    const data = join(dir, "log");
    mkdirSync(data, { mode: 0o700 });
    const logKey = runVellum(["keygen", "--name", ORIGIN, "--out", join(data, "log.key")]);
    expect(logKey.code, logKey.stderr).toBe(0);
    const accessKey = runVellum([
      "keygen",
      ...["--name", `${ORIGIN}/access`, "--out", join(data, "access.key")],
    ]);
    expect(accessKey.code, accessKey.stderr).toBe(0);
    const logVkey = logKey.stdout.trim();
    const accessVkey = accessKey.stdout.trim();
    const witnessPort = await freePort();
    const trustFile = join(dir, "trust.txt");
    const startWitness = () =>
      startVellum([
        "witness",
        ...["--data", join(dir, "w0"), "--port", String(witnessPort)],
        ...["--name", "w0.access.e2e.test/witness"],
        ...["--trust-file", trustFile],
      ]);
    const trust = (...vkeys: string[]) =>
      writeFileSync(trustFile, vkeys.map((v) => `log ${v}\n`).join(""));
    trust(logVkey, accessVkey);
    let witness: VellumProcess | undefined = await startWitness();
    const witnessVkey = readFileSync(join(dir, "w0", "witness.vkey"), "utf8").trim();
    const policyFile = join(dir, "policy.txt");
    writeFileSync(
      policyFile,
      [
        `log ${logVkey}`,
        `witness w0 ${witnessVkey} http://127.0.0.1:${witnessPort}`,
        "quorum w0",
        "",
      ].join("\n"),
    );
    const serve = (ready = "/readyz") =>
      startVellum(
        [
          "serve",
          ...["--data", data, "--port", "0", "--access-log", "--no-index"],
          ...["--witness-policy", policyFile, "--witness-timeout-ms", "500"],
        ],
        ready,
      );
    let server = await serve();
    try {
      const auth = {
        Authorization: `Bearer ${readFileSync(join(data, "admin.token"), "utf8").trim()}`,
      };
      const posted = await fetch(`${server.url}/v1/entries`, {
        method: "POST",
        headers: auth,
        body: "invoice 42 paid",
      });
      expect(posted.status).toBe(201);
      expect((await fetch(`${server.url}/v1/entries/0`, { headers: auth })).status).toBe(200);

      // The witness cosigns the access log's checkpoint that holds the read's record.
      const verifier = verifierFromKey(accessVkey);
      const cosigner = cosignatureVerifierFromKey(witnessVkey);
      await until("a cosigned access checkpoint of size 1", async () => {
        const res = await fetch(`${server.url}/access/checkpoint`);
        if (res.status !== 200) return false;
        const opened = openCheckpoint(await res.text(), verifier, [cosigner]);
        return (
          opened.checkpoint.size >= 1 &&
          opened.signatures.some((s) => s.name === "w0.access.e2e.test/witness")
        );
      });
      // While the witness is away, reads are still served: they never wait for a witness round.
      expect((await (witness as VellumProcess).stop()).code).toBe(0);
      witness = undefined;
      expect((await fetch(`${server.url}/v1/entries/0`, { headers: auth })).status).toBe(200);
      expect((await server.stop()).code).toBe(0);

      // The witness back, but no longer trusting the access log: the log itself starts, the
      // access log's rollback check cannot pass, so every read of entry contents is refused
      // (never served unrecorded) and the server says it is not ready…
      trust(logVkey);
      witness = await startWitness();
      server = await serve("/healthz");
      let ready = "";
      await until("the log open, the access log not", async () => {
        const res = await fetch(`${server.url}/readyz`);
        ready = `${res.status} ${await res.text()}`;
        return /^503 .*"reason":"the access log: /.test(ready);
      }).catch((e) => {
        throw new Error(
          `${e.message}; /readyz: ${ready}\n${server
            .output()
            .split("\n")
            .filter((l) => !l.includes('"msg":"request"'))
            .join("\n")}`,
        );
      });
      const refused = await fetch(`${server.url}/v1/entries/0`, { headers: auth });
      expect(refused.status).toBe(503);
      const problem = (await refused.json()) as { code: string; detail: string };
      expect(problem.code).toBe("UNAVAILABLE");
      expect(problem.detail).toMatch(/could not be recorded in the access log/);
      expect(server.output()).toMatch(
        /the access log .* is starting: .* reads of entry contents are refused/,
      );
      // …until its witness trusts it again (the trust file is re-read while it runs).
      trust(logVkey, accessVkey);
      await until(
        "reads served again",
        async () => (await fetch(`${server.url}/v1/entries/0`, { headers: auth })).status === 200,
        40_000,
      );
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    } finally {
      await server.stop();
      await witness?.stop();
    }
  });
});
