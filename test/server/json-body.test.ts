/**
 * JSON bodies are parsed only when cheap to parse: the nesting and the number of structural
 * tokens are bounded by one pass over the bytes (strings skipped, escapes honoured), and the
 * bytes must be UTF-8. Refusals are 400 problems that name the problem and change nothing. The
 * body budget refuses what would pass it with 503 OVERLOADED and gives bytes back.
 */
import { describe, expect, it } from "vitest";
import { BodyBudget } from "../../src/server/body-budget.js";
import {
  checkJsonShape,
  hasLoneSurrogate,
  MAX_JSON_DEPTH,
  parseJsonBody,
} from "../../src/server/json-body.js";
import { expectJson, expectProblem, openHarness, post } from "./helpers.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const refusal = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return "accepted";
};

describe("checkJsonShape", () => {
  it("counts nesting outside strings only, honouring escaped quotes and backslash runs", () => {
    const shape = { maxDepth: 2, maxTokens: 100 };
    expect(refusal(() => checkJsonShape(utf8("[[1]]"), shape))).toBe("accepted");
    expect(refusal(() => checkJsonShape(utf8("[[[1]]]"), shape))).toMatch(/nested more than 2/);
    // Brackets inside strings are text, wherever the string's quotes are escaped.
    const inString = ['["[[[[[["]', '["\\"[[[[["]', '["\\\\", "[[[["]', '[{"a\\\\\\"[[[": 1}]'];
    for (const text of inString) {
      expect(JSON.parse(text)).toBeDefined();
      expect(
        refusal(() => checkJsonShape(utf8(text), shape)),
        text,
      ).toBe("accepted");
    }
    // An even run of backslashes ends the string: what follows is structure again.
    expect(refusal(() => checkJsonShape(utf8('["\\\\", [[[1]]]]'), shape))).toMatch(/nested/);
  });

  it("bounds the structural tokens, and leaves malformed text to JSON.parse", () => {
    expect(refusal(() => checkJsonShape(utf8("[1,2,3]"), { maxTokens: 3 }))).toBe("accepted");
    expect(refusal(() => checkJsonShape(utf8("[1,2,3,4]"), { maxTokens: 3 }))).toMatch(
      /more than 3 values/,
    );
    expect(refusal(() => checkJsonShape(utf8('["unterminated'), { maxTokens: 3 }))).toBe(
      "accepted",
    );
    expect(refusal(() => parseJsonBody(utf8('["unterminated'), { maxTokens: 3 }, "bad"))).toBe(
      "bad",
    );
  });

  it("refuses bytes that are not UTF-8, and spots lone surrogates", () => {
    const bytes = Uint8Array.of(0x22, 0x61, 0xff, 0x22);
    expect(refusal(() => parseJsonBody(bytes, { maxTokens: 1 }, "bad"))).toMatch(/UTF-8/);
    expect(parseJsonBody(utf8('"\u00e9"'), { maxTokens: 1 }, "bad")).toBe("é");
    expect(hasLoneSurrogate(JSON.parse('"k\\udcff"'))).toBe(true);
    expect(hasLoneSurrogate(JSON.parse('"k\\ud83d"'))).toBe(true);
    expect(hasLoneSurrogate("k😀é")).toBe(false);
  });
});

describe("BodyBudget", () => {
  it("never holds more than its bytes; a refusal reserves nothing; release gives all back", () => {
    const budget = new BodyBudget(100);
    const a = {};
    const b = {};
    budget.reserve(a, 60);
    budget.reserve(a, 30);
    expect(() => budget.reserve(b, 11)).toThrowError(
      expect.objectContaining({ code: "OVERLOADED", retryAfterMs: 1000 }),
    );
    expect(budget.used).toBe(90);
    budget.reserve(b, 10);
    budget.release(a);
    budget.release(a); // twice is harmless
    expect(budget.used).toBe(10);
    budget.release(b);
    expect(budget.used).toBe(0);
  });
});

describe("JSON bodies over HTTP", () => {
  it("a deeply nested batch body is refused with 400 before parsing; nothing changes", async () => {
    const h = await openHarness();
    const res = await post(h.app, "/v1/entries/batch", {
      token: h.tokens.append,
      headers: { "Content-Type": "application/json" },
      body: "[".repeat(1_000_000),
    });
    const problem = await expectProblem(res, 400, "BAD_REQUEST");
    expect(problem.detail).toMatch(`nested more than ${MAX_JSON_DEPTH} levels`);
    expect(h.log.size).toBe(0);
  });

  it("a batch with far more tokens than its entries need is refused; a full batch passes", async () => {
    const h = await openHarness({ maxBatchEntries: 10 });
    const tiny = '{"payload":"AA=="}';
    const res = await post(h.app, "/v1/entries/batch", {
      token: h.tokens.append,
      headers: { "Content-Type": "application/json" },
      body: `{"entries":[${Array(1000).fill(tiny).join(",")}]}`,
    });
    expect((await expectProblem(res, 400, "BAD_REQUEST")).detail).toMatch(/more than 224 values/);
    const ten = Array.from(
      { length: 10 },
      (_, i) => `{"payload":"${btoa(`entry ${i}`)}","idempotencyKey":"k${i}"}`,
    );
    const ok = await post(h.app, "/v1/entries/batch", {
      token: h.tokens.append,
      headers: { "Content-Type": "application/json" },
      body: `{"entries":[${ten.join(",")}]}`,
    });
    await expectJson(ok, 200);
    expect(h.log.size).toBe(10);
  });

  it("a token request nested past the bound is refused too", async () => {
    const h = await openHarness();
    const res = await post(h.app, "/v1/tokens", {
      token: h.tokens.admin,
      headers: { "Content-Type": "application/json" },
      body: `{"name":"x","scopes":${"[".repeat(100)}`,
    });
    expect((await expectProblem(res, 400, "BAD_REQUEST")).detail).toMatch(/nested/);
  });
});

describe("the body budget over HTTP", () => {
  it("a streamed body that would pass the budget is 503 OVERLOADED; answered bodies give their bytes back", async () => {
    const h = await openHarness({ bodyBudgetBytes: 100 });
    const stream = (n: number, tag: string) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          // In two chunks, without a Content-Length: reserved chunk by chunk.
          controller.enqueue(new TextEncoder().encode(tag.padEnd(n / 2, ".")));
          controller.enqueue(new TextEncoder().encode("".padEnd(n / 2, "!")));
          controller.close();
        },
      });
    const send = (n: number, tag: string) =>
      h.app.request("/v1/entries", {
        method: "POST",
        headers: { Authorization: `Bearer ${h.tokens.append}` },
        body: stream(n, tag),
        duplex: "half",
      } as RequestInit);
    const refused = await send(200, "too much");
    const problem = await expectProblem(refused, 503, "OVERLOADED");
    expect(problem.detail).toMatch(/budget 0\.0 MiB|request bodies/);
    expect(refused.headers.get("Retry-After")).toBe("1");
    expect(h.log.size).toBe(0);
    // 60 + 60 > 100 only if the first one's bytes were never given back.
    expect((await send(60, "first")).status).toBe(201);
    expect((await send(60, "second")).status).toBe(201);
    expect(h.log.size).toBe(2);
  });
});
