/**
 * Limits and start-up fixes of the real `vellum serve` (bin/vellum.js over the built dist/) on
 * 127.0.0.1, spoken to over raw sockets where the bytes matter:
 * - a connection that sends its headers slowly is closed by the 10 s header timeout, not up to
 *   30 s later (Node checks its timeouts every connectionsCheckingInterval);
 * - request bodies in flight share one budget: past it, 503 OVERLOADED with Retry-After before
 *   anything more is read, and the budget comes back when a request ends;
 * - an Idempotency-Key header that is not UTF-8 is refused (400), not folded into U+FFFD;
 * - a data directory and an admin.token open to others are made private, with a warning;
 * - a log whose clock is behind its last checkpoint starts only with --allow-clock-behind, and
 *   then issues nothing below what it issued before.
 */
import { chmodSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDataDir } from "../../src/cli/datadir.js";
import { Log } from "../../src/log/log.js";
import { installNodeCrypto } from "../../src/platform/node-crypto.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import { runVellum } from "../helpers/cli.js";
import { startVellum, type VellumProcess } from "../helpers/processes.js";

installNodeCrypto();

const fresh = () => join(mkdtempSync(join(tmpdir(), "vellum-limits-")), "data");

let server: VellumProcess;
let data: string;
let token: string;
beforeAll(async () => {
  data = fresh();
  server = await startVellum(
    ["serve", "--data", data, "--port", "0", "--body-budget-mb", "16"],
    "/readyz",
  );
  token = readFileSync(join(data, "admin.token"), "utf8").trim();
});
afterAll(async () => {
  await server?.stop();
});

function open(): Promise<Socket> {
  const { port, hostname } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.on("error", reject);
  });
}

/** Sends `request` on a new connection and resolves with everything read until it closes. */
async function exchange(request: Buffer): Promise<string> {
  const socket = await open();
  let answer = "";
  socket.setEncoding("latin1").on("data", (d: string) => {
    answer += d;
  });
  socket.write(request);
  return new Promise((resolve) => socket.on("close", () => resolve(answer)));
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
const bodyOf = (answer: string) => answer.slice(answer.indexOf("\r\n\r\n") + 4);

const size = async () =>
  Number((await (await fetch(`${server.url}/checkpoint`)).text()).split("\n")[1]);

describe("slow headers", () => {
  it("a connection still sending its headers is closed by the 10 s header timeout", async () => {
    const socket = await open();
    const started = Date.now();
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    // One header byte every 500 ms: the connection is never idle, the headers never end.
    const drip = setInterval(() => socket.writable && socket.write("X"), 500);
    await closed;
    clearInterval(drip);
    // Generous: Node's default check interval (30 s) closed it only after 36-41 s.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
  }, 30_000);
});

describe("request bodies in flight", () => {
  it("past the budget: 503 OVERLOADED with Retry-After, nothing read; the budget comes back", async () => {
    const before = await size();
    // A 16 MiB batch that is declared but not sent: it holds the whole 16 MiB budget.
    const holder = await open();
    holder.on("error", () => {});
    let holderAnswer = "";
    holder.setEncoding("latin1").on("data", (d: string) => {
      holderAnswer += d;
    });
    holder.write(
      `POST /v1/entries/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${16 * 1024 * 1024}\r\n\r\n{"entries":[`,
    );
    // Until the holder's body is being read, a small submission may still pass: wait for the 503.
    let answer = "";
    for (let i = 0; i < 100; i++) {
      answer = await exchange(
        Buffer.from(
          `POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`,
        ),
      );
      if (statusOf(answer) === 503) break;
      expect(statusOf(answer), answer).toBe(201); // the first may land before the holder's reserve
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(statusOf(answer), answer).toBe(503);
    expect(answer).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(answer).toMatch(/\r\nretry-after: \d+\r\n/i);
    const problem = JSON.parse(bodyOf(answer)) as { code: string; detail: string };
    expect(problem.code).toBe("OVERLOADED");
    expect(problem.detail).toMatch(/request bodies/);
    expect(holderAnswer).toBe(""); // the holder is still being read, not refused
    const landed = (await size()) - before; // at most the one that came before the holder

    // The holder hangs up: its reservation is given back and submissions pass again.
    holder.destroy();
    let status = 0;
    for (let i = 0; i < 100 && status !== 201; i++) {
      const r = await fetch(`${server.url}/v1/entries`, {
        method: "POST",
        body: `after the holder ${i}`,
        headers: { Authorization: `Bearer ${token}` },
      });
      status = r.status;
      if (status !== 201) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(201);
    expect(await size()).toBe(before + landed + 1);
    expect(server.output()).toMatch(/request bodies in flight reached the budget of 16 MiB/);
  });
});

describe("Idempotency-Key bytes", () => {
  const submitWithKey = (key: Buffer, payload: string) =>
    exchange(
      Buffer.concat([
        Buffer.from(
          `POST /v1/entries HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${payload.length}\r\nConnection: close\r\nIdempotency-Key: `,
        ),
        key,
        Buffer.from(`\r\n\r\n${payload}`),
      ]),
    );

  it("a key that is not UTF-8 is refused with 400 naming the header; nothing is stored", async () => {
    const before = await size();
    for (const bytes of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      const answer = await submitWithKey(
        Buffer.concat([Buffer.from("key-"), Buffer.from(bytes)]),
        `not utf-8 ${bytes}`,
      );
      expect(statusOf(answer), answer).toBe(400);
      expect(answer).toMatch(/\r\ncontent-type: application\/problem\+json/i);
      expect(JSON.parse(bodyOf(answer))).toMatchObject({ code: "BAD_REQUEST" });
      expect(bodyOf(answer)).toMatch(/Idempotency-Key header is not valid UTF-8/);
    }
    expect(await size()).toBe(before);
  });

  it("a UTF-8 key is the same key in the header and in a batch body; different keys never collide", async () => {
    const key = "clé-ü-1";
    const first = await submitWithKey(Buffer.from(key, "utf8"), "keyed by utf-8");
    expect(statusOf(first), first).toBe(201);
    const { index } = JSON.parse(bodyOf(first)) as { index: number };
    const other = await submitWithKey(Buffer.from("clé-ü-2", "utf8"), "another key");
    expect(statusOf(other), other).toBe(201);
    const r = await fetch(`${server.url}/v1/entries/batch`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        entries: [
          { payload: Buffer.from("keyed by utf-8").toString("base64"), idempotencyKey: key },
        ],
      }),
    });
    const { results } = (await r.json()) as { results: { status: number; index: number }[] };
    expect(results[0]).toMatchObject({ status: 200, index });
  });

  it("a batch key that is not UTF-8, or a lone surrogate escape, is refused (no false 409)", async () => {
    const before = await size();
    const batch = (key: Buffer) => {
      const body = Buffer.concat([
        Buffer.from('{"entries":[{"payload":"YWJj","idempotencyKey":"k'),
        key,
        Buffer.from('"}]}'),
      ]);
      return exchange(
        Buffer.concat([
          Buffer.from(
            `POST /v1/entries/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`,
          ),
          body,
        ]),
      );
    };
    for (const key of [Buffer.from([0xff]), Buffer.from([0xfe]), Buffer.from("\\udcff")]) {
      const answer = await batch(key);
      expect(statusOf(answer), answer).toBe(400);
      expect(bodyOf(answer)).toMatch(/not valid UTF-8|idempotencyKey/);
    }
    expect(await size()).toBe(before);
  });
});

describe("data directory modes", () => {
  it("a data directory and admin.token open to others are made private, with a warning", async () => {
    const dir = fresh();
    const first = await startVellum(["serve", "--data", dir, "--port", "0"], "/readyz");
    await first.stop();
    chmodSync(dir, 0o755);
    chmodSync(join(dir, "admin.token"), 0o644);
    const again = await startVellum(["serve", "--data", dir, "--port", "0"], "/readyz");
    await again.stop();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "admin.token")).mode & 0o777).toBe(0o600);
    expect(again.stderr()).toContain(`warning: ${dir} had mode 0755`);
    expect(again.stderr()).toContain(`warning: ${join(dir, "admin.token")} had mode 0644`);
    // Nothing to say when the modes are right.
    const third = await startVellum(["serve", "--data", dir, "--port", "0"], "/readyz");
    await third.stop();
    expect(third.stderr()).not.toMatch(/warning/);
  });
});

describe("a clock behind the log", () => {
  it("refuses to start, then with --allow-clock-behind starts and issues nothing below the last", async () => {
    const dir = fresh();
    // A log whose clock once ran a year ahead.
    const ahead = Date.now() + 365 * 86_400_000;
    const files = openDataDir(dir);
    const db = await openLevelDatabase(files.dbPath);
    const log = await Log.open({
      origin: files.origin,
      seed: files.seed,
      kv: db.namespace("log"),
      clock: () => ahead,
      checkpointIntervalMs: 0,
    });
    const [last] = await log.submitMany([new TextEncoder().encode("stamped a year ahead")]);
    const lastTime = log.checkpoint.time;
    await log.close();
    await db.close();

    const refused = runVellum(["serve", "--data", dir, "--port", "0"], { timeoutMs: 20_000 });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/clock .* behind the last checkpoint.*--allow-clock-behind/);

    const s = await startVellum(
      ["serve", "--data", dir, "--port", "0", "--allow-clock-behind"],
      "/readyz",
    );
    try {
      expect(s.stderr()).toMatch(/WARNING: the clock is \d+ s behind the last checkpoint's time/);
      const tokenText = readFileSync(join(dir, "admin.token"), "utf8").trim();
      const r = await fetch(`${s.url}/v1/entries`, {
        method: "POST",
        body: "stamped after the clock was fixed",
        headers: { Authorization: `Bearer ${tokenText}` },
      });
      expect(r.status).toBe(201);
      const receipt = (await r.json()) as { index: number; id: string; timestamp: number };
      expect(receipt.index).toBe(1);
      expect(receipt.timestamp).toBeGreaterThanOrEqual(last!.timestamp);
      expect(receipt.id > last!.idText).toBe(true); // UUIDv7 order follows the index
      const info = (await (await fetch(`${s.url}/v1/log`)).json()) as {
        treeSize: number;
        checkpointTime: number;
      };
      expect(info.treeSize).toBe(2);
      expect(info.checkpointTime).toBe(lastTime); // held, not the (earlier) clock's time
    } finally {
      await s.stop();
    }
  }, 60_000);
});
