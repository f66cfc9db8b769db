/**
 * A real `vellum witness` process cuts a connection whose request header never completes: a
 * client dripping one header byte every 500 ms on 127.0.0.1 is answered 408 and disconnected
 * after the documented 10 s, not after Node's default 60 s header timeout or its 30 s connection
 * check (which cut such connections after 36-41 s). Bounded: one connection, at most 40 s.
 */
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { WITNESS_HTTP_TIMEOUTS } from "../../src/cli/witness.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";

let witness: VellumProcess | undefined;
afterAll(async () => {
  await witness?.stop();
});

describe("vellum witness HTTP timeouts", () => {
  it("cuts a slow-header connection after its header timeout", { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-wslow-"));
    witness = await startVellum(["witness", "--data", join(dir, "w"), "--port", "0"]);
    const { hostname, port } = new URL(witness.url);
    const socket = connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const started = Date.now();
    let answer = "";
    socket.setEncoding("utf8").on("data", (s: string) => {
      answer += s;
    });
    socket.on("error", () => {}); // a reset after the 408 is a cut too
    socket.write("POST /add-checkpoint HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write("a");
    }, 500);
    const cutAfter = await new Promise<number | "never">((resolve) => {
      const give = setTimeout(() => resolve("never"), 40_000);
      socket.once("close", () => {
        clearTimeout(give);
        resolve(Date.now() - started);
      });
    });
    clearInterval(drip);
    socket.destroy();
    expect(cutAfter).not.toBe("never");
    // Generous bounds: not before the header timeout, well before Node's 30 s connection check.
    expect(cutAfter).toBeGreaterThanOrEqual(WITNESS_HTTP_TIMEOUTS.headersTimeout - 1_000);
    expect(cutAfter).toBeLessThan(25_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    // The witness itself is fine.
    expect((await fetch(`${witness.url}/healthz`)).status).toBe(200);
  });
});
