/**
 * Broken uploads against the real `vellum serve`: a body cut short (the client promises more
 * bytes than it sends, then hangs up) and an oversized declared body never reach the log, and
 * the server keeps serving.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVellum, type VellumProcess } from "../helpers/processes.js";

let server: VellumProcess;
let token: string;
beforeAll(async () => {
  const data = join(mkdtempSync(join(tmpdir(), "vellum-uploads-")), "data");
  server = await startVellum(["serve", "--data", data, "--port", "0"], "/readyz");
  token = readFileSync(join(data, "admin.token"), "utf8").trim();
});
afterAll(async () => {
  await server?.stop();
});

function raw(request: string, hangUpAfterMs = 200): Promise<string> {
  const { port, hostname } = new URL(server.url);
  return new Promise((resolve) => {
    let answer = "";
    const socket = connect(Number(port), hostname, () => socket.write(request));
    socket.setEncoding("utf8").on("data", (d: string) => {
      answer += d;
    });
    setTimeout(() => socket.destroy(), hangUpAfterMs);
    socket.on("close", () => resolve(answer));
  });
}

const size = async () =>
  Number((await (await fetch(`${server.url}/checkpoint`)).text()).split("\n")[1]);

describe("broken uploads", () => {
  it("a truncated body and an oversized one change nothing; the server goes on", async () => {
    const before = await size();
    const cut = await raw(
      `POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\nonly ten b`,
    );
    expect(cut).not.toMatch(/^HTTP\/1\.1 201/);
    const big = await raw(
      `POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n`,
      1000,
    );
    expect(big).toMatch(/^HTTP\/1\.1 413/);
    expect(big).toMatch(/65438/);
    expect(await size()).toBe(before);
    const ok = await fetch(`${server.url}/v1/entries`, {
      method: "POST",
      body: "after",
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(ok.status).toBe(201);
    expect(await size()).toBe(before + 1);
  });
});
