/**
 * @module
 * The explorer (web/explorer/, bundled into dist/web/ by `npm run build`): the page at `/`, its
 * script and style sheet, under a strict Content-Security-Policy — scripts and styles only from
 * this origin, no inline script, no eval, requests only to this origin, no frames, no forms
 * posting elsewhere — so that nothing a payload holds can run, even if it reached the page as
 * markup (the page renders payloads as text only).
 */
import { Hono } from "hono";
import type { Env } from "../http.js";

export interface ExplorerAssets {
  readonly "index.html": string;
  readonly "app.js": string;
  readonly "app.css": string;
}

export const EXPLORER_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const HEADERS = {
  "Content-Security-Policy": EXPLORER_CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

export function explorerRoutes(assets: ExplorerAssets): Hono<Env> {
  const app = new Hono<Env>();
  app.get("/", (c) =>
    c.body(assets["index.html"], 200, { ...HEADERS, "Content-Type": "text/html; charset=utf-8" }),
  );
  app.get("/explorer/app.js", (c) =>
    c.body(assets["app.js"], 200, { ...HEADERS, "Content-Type": "text/javascript; charset=utf-8" }),
  );
  app.get("/explorer/app.css", (c) =>
    c.body(assets["app.css"], 200, { ...HEADERS, "Content-Type": "text/css; charset=utf-8" }),
  );
  return app;
}
