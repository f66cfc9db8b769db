/**
 * GET /docs: the API reference rendered from spec/openapi.json. Every operation appears with its
 * parameters, request body, responses and a "try it" form whose method and path reach a real
 * route; every schema has a section; the page loads nothing from elsewhere (no src/link/@import,
 * no absolute URLs in attributes) and its Content-Security-Policy matches its inline script and
 * style. Driving the page in a browser needs Debian's Chromium (`scripts/services.sh up
 * chromium`): skipped locally, with a message, when it is missing; never under CI.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { beforeAll, describe, expect, it } from "vitest";
import { needService } from "../helpers/services.js";
import { expectJson, get, type Harness, openHarness } from "./helpers.js";

interface Op {
  operationId: string;
  parameters?: ({ $ref: string } | { name: string; in: string })[];
  requestBody?: { content: Record<string, unknown> };
  responses: Record<string, unknown>;
}
const doc = JSON.parse(
  readFileSync(new URL("../../spec/openapi.json", import.meta.url), "utf8"),
) as {
  paths: Record<string, Record<string, Op>>;
  components: { schemas: Record<string, unknown>; parameters: Record<string, { name: string }> };
};
const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ method, path, op })),
);
const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

let h: Harness;
let html: string;
let csp: string;
beforeAll(async () => {
  h = await openHarness({ index: true, access: true });
  const res = await get(h.app, "/docs");
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toMatch(/^text\/html/);
  csp = res.headers.get("Content-Security-Policy") ?? "";
  html = await res.text();
});

/** The HTML of one operation's section. */
function section(id: string): string {
  const start = html.indexOf(`data-operation="${id}"`);
  expect(start, `section for ${id}`).toBeGreaterThan(0);
  const end = html.indexOf("</section>", start);
  return html.slice(start, end);
}

describe("/docs", () => {
  it("shows every operation with its parameters, body, responses and a try-it form", () => {
    expect(operations.length).toBeGreaterThan(15);
    for (const { method, path, op } of operations) {
      const s = section(op.operationId);
      expect(s).toContain(`>${method.toUpperCase()}</span> <code>${esc(path)}</code>`);
      for (const p of op.parameters ?? []) {
        const name =
          "$ref" in p ? doc.components.parameters[p.$ref.split("/").pop()!]!.name : p.name;
        expect(s, `${op.operationId} parameter ${name}`).toContain(`<code>${esc(name)}</code>`);
        expect(s).toContain(`data-name="${esc(name)}"`);
      }
      for (const type of Object.keys(op.requestBody?.content ?? {})) {
        expect(s, `${op.operationId} body ${type}`).toContain(`<code>${esc(type)}</code>`);
        expect(s).toContain(`data-type="${esc(type)}"`);
      }
      for (const status of Object.keys(op.responses)) {
        expect(s, `${op.operationId} response ${status}`).toContain(`>${status}</span>`);
      }
      expect(s).toContain(
        `<form class="try" data-method="${method.toUpperCase()}" data-path="${esc(path)}">`,
      );
    }
    // JSON request bodies come with an example that parses.
    const batch = section("submitBatch");
    const example =
      /<textarea data-body data-type="application\/json"[^>]*>([^<]*)<\/textarea>/.exec(batch);
    const parsed = JSON.parse(example![1]!.replace(/&#34;/g, '"').replace(/&#39;/g, "'")) as {
      entries: unknown[];
    };
    expect(Array.isArray(parsed.entries)).toBe(true);
    // Answers show an example.
    expect(section("getLogInfo")).toContain('<p class="label">Example</p>');
  });

  it("has a section for every schema, and links resolve to sections", () => {
    for (const name of Object.keys(doc.components.schemas)) {
      expect(html).toContain(`id="schema-${name}"`);
    }
    for (const [, target] of html.matchAll(/href="#([^"]+)"/g)) {
      expect(html, `link #${target}`).toContain(`id="${target}"`);
    }
  });

  it("loads nothing from elsewhere, and its policy names exactly its script and style", () => {
    expect(html).not.toMatch(/<link\b|<script[^>]*\ssrc=|<img\b|@import|url\(/i);
    expect(html).not.toMatch(/(?:href|src|action)="(?:https?:)?\/\//i);
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const hash = (t: string) => `'sha256-${createHash("sha256").update(t).digest("base64")}'`;
    expect(csp).toContain(`script-src ${hash(script)};`);
    expect(csp).toContain(`style-src ${hash(style)};`);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/connect-src 'self'/);
    // The token is kept in sessionStorage, requests go to relative (same-origin) URLs.
    expect(script).toContain("sessionStorage");
    expect(script).toMatch(/fetch\(url, init\)/);
    expect(html).toContain('id="token"');
  });

  it("each try-it form's method and path reach a real route (as the page would send them)", async () => {
    const filled: Record<string, string> = {
      index: "0",
      size: "1",
      id: "0123456789abcdef",
      hash: "A".repeat(43),
      tilePath: "0/000",
      bundlePath: "000",
    };
    for (const m of html.matchAll(/<form class="try" data-method="(\w+)" data-path="([^"]+)">/g)) {
      const path = m[2]!.replace(/\{(\w+)\}/g, (_, n: string) => filled[n] ?? "x");
      const res = await h.app.request(path, { method: m[1]! });
      if (res.status === 404) {
        const body = (await res.json()) as { code: string };
        expect(`${m[1]} ${path}: ${body.code}`).not.toMatch(/ROUTE_NOT_FOUND/);
      }
      expect(`${m[1]} ${path}: ${res.status}`).not.toMatch(/: 405$/);
    }
    await expectJson(await get(h.app, "/healthz"), 200);
  });

  // Debian's Chromium (scripts/services.sh up chromium), driven by playwright-core (a dev
  // dependency). Locally it is skipped, saying how to get it; under CI it must run.
  const chromium = needService("chromium", ["VELLUM_CHROMIUM"])?.VELLUM_CHROMIUM;
  const playwright = createRequire(import.meta.url).resolve("playwright-core");
  const browser = chromium !== undefined;
  it.skipIf(!browser)("try it sends a request from the page (Chromium)", async () => {
    // The page on a real server, a token typed in, the getEntry form sent, its answer shown.
    const { serve } = await import("@hono/node-server");
    const { chromium: launcher } = (await import(playwright)) as {
      chromium: {
        launch(o: object): Promise<{
          newPage(): Promise<{
            goto(u: string): Promise<unknown>;
            fill(sel: string, v: string): Promise<void>;
            click(sel: string): Promise<void>;
            waitForFunction(f: string): Promise<unknown>;
            textContent(sel: string): Promise<string | null>;
          }>;
          close(): Promise<void>;
        }>;
      };
    };
    await h.log.submit(new TextEncoder().encode("from the docs test"));
    const server = serve({ fetch: h.app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as { port: number };
    const b = await launcher.launch({ executablePath: chromium, args: ["--no-sandbox"] });
    try {
      const page = await b.newPage();
      await page.goto(`http://127.0.0.1:${port}/docs`);
      await page.fill("#token", h.tokens.read);
      const form = '[data-operation="getEntry"] form.try';
      await page.fill(`${form} input[data-name="index"]`, "0");
      await page.click(`${form} button`);
      await page.waitForFunction(
        `(document.querySelector('${form} .out').textContent || "").startsWith("200")`,
      );
      expect(await page.textContent(`${form} .out`)).toMatch(/"index": 0/);
    } finally {
      await b.close();
      server.close();
    }
  });
});
