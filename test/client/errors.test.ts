/**
 * The SDK's errors say what happened: every problem code the server can send is known to the
 * client (one list, src/core/problem-codes.ts) and arrives as that VellumError code, never as
 * NETWORK; refusals (400, 404, 409, 413) are not retried; a malformed URL, a malformed batch and
 * an entry over the size limit are refused before anything is sent; and a receipt says
 * `witnessed: true` only when a witness policy was met (a log without one never claims it).
 * Against the real server on 127.0.0.1 where a server is involved.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, describe, expect, it } from "vitest";
import { VellumClient } from "../../src/client/http.js";
import { MAX_PAYLOAD_SIZE } from "../../src/core/entry.js";
import { ERROR_CODES, type ErrorCode, VellumError } from "../../src/core/errors.js";
import {
  clientErrorCode,
  HTTP_ERROR_CODES,
  type HttpErrorCode,
  PROBLEM_CODES,
} from "../../src/core/problem-codes.js";
import { HttpProblem, problemOf, SERVER_PROBLEM_CODES } from "../../src/server/problem.js";
import { codeOfAsync } from "../helpers/errors.js";
import { openHarness } from "../server/helpers.js";

const servers: ReturnType<typeof serve>[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** The real app on 127.0.0.1, and a client whose requests are counted (real fetch underneath). */
async function startServer() {
  const h = await openHarness();
  const url = await new Promise<string>((resolve) => {
    const s = serve({ fetch: h.app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
      resolve(`http://127.0.0.1:${(info as AddressInfo).port}`),
    );
    servers.push(s);
  });
  let requests = 0;
  const counting: typeof fetch = (input, init) => {
    requests++;
    return fetch(input, init);
  };
  const client = new VellumClient({ url, token: h.tokens.all, fetch: counting });
  return { ...h, url, client, requests: () => requests };
}

/** A fetch that must never be called: the SDK refused before sending. */
const never: typeof fetch = () => {
  throw new Error("the SDK sent a request it should have refused");
};

describe("problem codes: one list, shared by server and client", () => {
  it("every code the server can send is in the shared list, and the client knows it", async () => {
    // The server's status table is keyed by ProblemCode; the shared list must be exactly its keys.
    expect([...SERVER_PROBLEM_CODES].sort()).toEqual([...PROBLEM_CODES].sort());
    const httpOnly = new Set<string>(HTTP_ERROR_CODES);
    for (const code of SERVER_PROBLEM_CODES) {
      // The answer exactly as the server builds it (status, body, headers).
      const error = httpOnly.has(code)
        ? new HttpProblem(code as HttpErrorCode, `problem ${code}`)
        : new VellumError(code as ErrorCode, `problem ${code}`);
      const { problem, headers } = problemOf(error);
      let calls = 0;
      const answer: typeof fetch = async () => {
        calls++;
        return new Response(JSON.stringify(problem), {
          status: problem.status,
          headers: { "Content-Type": "application/problem+json", ...headers, "Retry-After": "0" },
        });
      };
      const client = new VellumClient({ url: "http://127.0.0.1:1", fetch: answer, retries: 2 });
      const got = await codeOfAsync(client.submit("x"));
      const expected = httpOnly.has(code) ? clientErrorCode(code, problem.status) : code;
      expect(got, code).toBe(expected);
      expect(ERROR_CODES).toContain(got);
      if (code !== "NETWORK") expect(got, code).not.toBe("NETWORK");
      // Only back-pressure, unavailability and a gateway's failure are worth repeating; a
      // refusal is final.
      expect(calls, code).toBe([429, 502, 503, 504].includes(problem.status) ? 3 : 1);
    }
    expect(clientErrorCode("PAYLOAD_TOO_LARGE", 413)).toBe("TOO_LARGE");
    expect(clientErrorCode("BAD_REQUEST", 400)).toBe("MALFORMED");
    // Not the protocol at all (a proxy's page): the status says what it can.
    expect(clientErrorCode(undefined, 404)).toBe("NOT_FOUND");
    expect(clientErrorCode("SOMETHING_NEW", 502)).toBe("NETWORK");
  });

  it("the real server's 413, 404 and 400 arrive with their codes, each after one request", async () => {
    const s = await startServer();
    const big = new Uint8Array(MAX_PAYLOAD_SIZE + 1000).fill(0x61);
    let before = s.requests();
    const tooLarge = await s.client
      .request("/v1/entries", { method: "POST", body: big })
      .catch((e) => e);
    expect(tooLarge).toMatchObject({ code: "TOO_LARGE" });
    expect(tooLarge.message).toMatch(/^HTTP 413 PAYLOAD_TOO_LARGE: /);
    expect(s.requests() - before).toBe(1);

    before = s.requests();
    await expect(s.client.entry(1_000_000)).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(s.requests() - before).toBe(1);

    before = s.requests();
    const bad = await s.client.request("/v1/entries", { method: "POST" }).catch((e) => e);
    expect(bad).toMatchObject({ code: "MALFORMED" });
    expect(bad.message).toMatch(/^HTTP 400 BAD_REQUEST: the payload \(request body\) is empty/);
    expect(s.requests() - before).toBe(1);

    before = s.requests();
    const noRoute = await s.client.request("/v1/nothing-here").catch((e) => e);
    expect(noRoute).toMatchObject({ code: "NOT_FOUND" });
    expect(s.requests() - before).toBe(1);
  });
});

describe("arguments are checked before anything is sent", () => {
  it("a malformed URL is refused at once", () => {
    for (const url of [
      "localhost:6962",
      "127.0.0.1:6962",
      "not a url",
      "",
      "ftp://x/",
      "http://x/?a=1",
    ]) {
      let error: unknown;
      try {
        new VellumClient({ url, fetch: never });
      } catch (e) {
        error = e;
      }
      expect(error, url).toBeInstanceOf(VellumError);
      expect((error as VellumError).code, url).toBe("MALFORMED");
    }
    expect(new VellumClient({ url: "https://log.example/prefix///", fetch: never }).url).toBe(
      "https://log.example/prefix",
    );
  });

  it("submitBatch names a malformed item instead of crashing inside base64", async () => {
    const client = new VellumClient({ url: "http://127.0.0.1:1", fetch: never });
    const cases: [unknown, RegExp][] = [
      [
        ["just a string"],
        /items\[0\] is a string; each item is an object \{ payload, idempotencyKey\? \}/,
      ],
      [
        [{ payload: "ok" }, { data: "x" }],
        /items\[1\]\.payload must be a string or a Uint8Array, not undefined/,
      ],
      [[{ payload: 42 }], /items\[0\]\.payload must be a string or a Uint8Array, not number/],
      [[{ payload: "x", idempotencyKey: 7 }], /items\[0\]\.idempotencyKey must be a string/],
      [[{ payload: "" }], /items\[0\]\.payload is empty/],
      ["not an array", /takes an array of \{ payload, idempotencyKey\? \}, not a string/],
    ];
    for (const [items, message] of cases) {
      const e = await client.submitBatch(items as never).catch((x) => x);
      expect(e, String(items)).toBeInstanceOf(VellumError);
      expect(e.code).toBe("MALFORMED");
      expect(e.message).toMatch(message);
    }
    const big = "x".repeat(MAX_PAYLOAD_SIZE + 1);
    await expect(client.submitBatch([{ payload: "fine" }, { payload: big }])).rejects.toMatchObject(
      {
        code: "TOO_LARGE",
        message: expect.stringMatching(
          new RegExp(
            `items\\[1\\]\\.payload is ${MAX_PAYLOAD_SIZE + 1} bytes; an entry holds at most ${MAX_PAYLOAD_SIZE} \\(nothing was sent\\)`,
          ),
        ),
      },
    );
  });

  it("a single submission over the size limit is refused locally, like --lines", async () => {
    const client = new VellumClient({ url: "http://127.0.0.1:1", fetch: never });
    await expect(client.submit(new Uint8Array(MAX_PAYLOAD_SIZE + 1))).rejects.toMatchObject({
      code: "TOO_LARGE",
    });
    await expect(client.submit(42 as never)).rejects.toMatchObject({ code: "MALFORMED" });
    // Exactly at the limit is an entry.
    const s = await startServer();
    const at = await s.client.submit(new Uint8Array(MAX_PAYLOAD_SIZE).fill(0x62));
    expect(at.index).toBe(0);
  });
});

describe("witnessed means a witness policy was met", () => {
  it("a log without a witness policy never says witnessed: single, batch and fresh receipts", async () => {
    const s = await startServer();
    const one = await s.client.submit("an event");
    expect(one.witnessed).toBe(false);
    const batch = await s.client.submitBatch([{ payload: "b1" }, { payload: "b2" }]);
    expect(batch.map((r) => r.witnessed)).toEqual([false, false]);
    expect((await s.client.receipt(one.index)).witnessed).toBe(false);
    const raw = (await (await s.client.request(`/v1/entries/${one.index}/receipt`)).json()) as {
      witnessed: unknown;
    };
    expect(raw.witnessed).toBe(false);
  });

  it("an answer that does not say (an older server) is not taken as witnessed", async () => {
    const answer: typeof fetch = async () =>
      new Response(
        JSON.stringify({
          index: 0,
          id: "x",
          timestamp: 1,
          leafHash: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
          treeSize: 1,
          checkpoint: "",
          receipt: "",
          duplicate: false,
        }),
        { status: 201 },
      );
    const client = new VellumClient({ url: "http://127.0.0.1:1", fetch: answer });
    expect((await client.submit("x")).witnessed).toBe(false);
  });
});
