/**
 * @module
 * GET /docs: the API reference, rendered on the server from the OpenAPI document (spec/openapi.json)
 * so that every operation, parameter, schema and example is in the page's HTML (readable without
 * scripts, checkable by a test), plus one small inline script for "try it": a form per operation
 * that sends the request from the page with fetch to the same origin, with a bearer token kept in
 * sessionStorage (gone when the tab closes, never sent anywhere but this server). Nothing is
 * loaded from elsewhere: no CDN, no fonts; the Content-Security-Policy names the inline script and
 * style by hash and allows connections only to this origin.
 */
import { createHash } from "node:crypto";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

interface Document {
  info: { title: string; version: string; description?: string };
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Obj>>;
  components: Record<string, Record<string, Obj>>;
}

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** Prose from the document: escaped, `code` spans, paragraphs on blank lines. */
function prose(text: string | null | undefined): string {
  if (typeof text !== "string" || text === "") return "";
  return text
    .split(/\n\s*\n/)
    .map((p) => `<p>${esc(p).replace(/`([^`]+)`/g, "<code>$1</code>")}</p>`)
    .join("");
}

const refName = (ref: string) => ref.slice(ref.lastIndexOf("/") + 1);
const anchor = (kind: string, name: string) => `${kind}-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;

class Renderer {
  constructor(private readonly doc: Document) {}

  /** Follows a local $ref ("#/components/schemas/X") once. */
  resolve(value: Obj): Obj {
    const ref = value.$ref;
    if (typeof ref !== "string" || !ref.startsWith("#/")) return value;
    let node: Json = this.doc as unknown as Json;
    for (const part of ref.slice(2).split("/")) {
      node = (node as Obj)?.[part] ?? null;
    }
    return node !== null && typeof node === "object" && !Array.isArray(node)
      ? {
          ...(node as Obj),
          ...Object.fromEntries(Object.entries(value).filter(([k]) => k !== "$ref")),
        }
      : value;
  }

  /** A one-line type: `integer (int64) ≥ 0`, a link to a named schema, `array of …`. */
  typeOf(schema: Obj | undefined): string {
    if (schema === undefined) return "";
    if (typeof schema.$ref === "string") {
      const name = refName(schema.$ref);
      return `<a href="#${anchor("schema", name)}">${esc(name)}</a>`;
    }
    if (schema.const !== undefined) return `<code>${esc(JSON.stringify(schema.const))}</code>`;
    if (Array.isArray(schema.enum)) {
      return `one of ${schema.enum.map((v) => `<code>${esc(JSON.stringify(v))}</code>`).join(", ")}`;
    }
    if (Array.isArray(schema.oneOf)) {
      return schema.oneOf.map((s) => this.typeOf(s as Obj)).join(" or ");
    }
    const type = Array.isArray(schema.type)
      ? schema.type.join(" | ")
      : String(schema.type ?? "any");
    const bits: string[] = [esc(type)];
    if (type === "array" && schema.items !== undefined)
      bits[0] = `array of ${this.typeOf(schema.items as Obj)}`;
    if (typeof schema.format === "string") bits.push(`(${esc(schema.format)})`);
    if (typeof schema.minimum === "number") bits.push(`≥ ${schema.minimum}`);
    if (typeof schema.maximum === "number") bits.push(`≤ ${schema.maximum}`);
    if (typeof schema.minLength === "number" || typeof schema.maxLength === "number") {
      bits.push(`length ${schema.minLength ?? 0}…${schema.maxLength ?? "∞"}`);
    }
    if (typeof schema.minItems === "number" || typeof schema.maxItems === "number") {
      bits.push(`${schema.minItems ?? 0}…${schema.maxItems ?? "∞"} items`);
    }
    if (typeof schema.pattern === "string")
      bits.push(`matching <code>${esc(schema.pattern)}</code>`);
    if (typeof schema.contentMediaType === "string") bits.push(esc(schema.contentMediaType));
    if (schema.default !== undefined)
      bits.push(`default <code>${esc(JSON.stringify(schema.default))}</code>`);
    return bits.join(" ");
  }

  /** A schema as a table of its properties (one level; named schemas are links), or its type. */
  schemaBlock(schema: Obj | undefined): string {
    if (schema === undefined) return "";
    const named = typeof schema.$ref === "string" ? refName(schema.$ref) : undefined;
    const s = this.resolve(schema);
    const head =
      named === undefined ? "" : `<p class="schema-name">Schema: ${this.typeOf(schema)}</p>`;
    const props = s.properties as Obj | undefined;
    if (props === undefined || typeof props !== "object") {
      return `${head}<p>${this.typeOf(s)}</p>${prose(named === undefined ? (s.description as string | undefined) : undefined)}`;
    }
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
    const rows = Object.entries(props)
      .map(([name, p]) => {
        const prop = p as Obj;
        const desc = (prop.description ?? this.resolve(prop).description) as string | undefined;
        return `<tr><td><code>${esc(name)}</code>${required.has(name) ? ' <span class="req">required</span>' : ""}</td><td>${this.typeOf(prop)}</td><td>${prose(desc)}</td></tr>`;
      })
      .join("");
    return `${head}<table class="props"><thead><tr><th>field</th><th>type</th><th>meaning</th></tr></thead><tbody>${rows}</tbody></table>`;
  }

  /** An example value for a schema: its own example, else one built from its type. */
  example(schema: Obj | undefined, depth = 0): Json {
    if (schema === undefined || depth > 6) return null;
    if (schema.example !== undefined) return schema.example;
    if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0]!;
    if (typeof schema.$ref === "string") return this.example(this.resolve(schema), depth + 1);
    if (schema.const !== undefined) return schema.const;
    if (Array.isArray(schema.enum)) return schema.enum[0] ?? null;
    if (Array.isArray(schema.oneOf)) return this.example(schema.oneOf[0] as Obj, depth + 1);
    if (schema.default !== undefined) return schema.default;
    const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
    switch (type) {
      case "object": {
        const out: Obj = {};
        const props = (schema.properties ?? {}) as Obj;
        for (const [k, v] of Object.entries(props)) out[k] = this.example(v as Obj, depth + 1);
        return out;
      }
      case "array":
        return [this.example(schema.items as Obj | undefined, depth + 1)];
      case "integer":
      case "number":
        return typeof schema.minimum === "number" ? schema.minimum : 0;
      case "boolean":
        return false;
      case "string":
        return typeof schema.format === "string" ? `<${schema.format}>` : "string";
      default:
        return null;
    }
  }

  exampleBlock(media: Obj | undefined, schema: Obj | undefined, type: string): string {
    const examples: string[] = [];
    if (media?.example !== undefined) examples.push(this.show(media.example, type));
    if (media?.examples !== undefined && typeof media.examples === "object") {
      for (const [name, ex] of Object.entries(media.examples as Obj)) {
        const value = (ex as Obj).value;
        if (value !== undefined)
          examples.push(`<p class="ex-name">${esc(name)}</p>${this.show(value, type)}`);
      }
    }
    if (examples.length === 0 && type.includes("json") && schema !== undefined) {
      examples.push(this.show(this.example(schema), type));
    }
    return examples.length === 0
      ? ""
      : `<div class="example"><p class="label">Example</p>${examples.join("")}</div>`;
  }

  show(value: Json, type: string): string {
    const text =
      typeof value === "string" && !type.includes("json") ? value : JSON.stringify(value, null, 2);
    return `<pre>${esc(text)}</pre>`;
  }

  parameters(op: Obj, pathItem: Record<string, Obj>): Obj[] {
    const all = [
      ...((pathItem.parameters as unknown as Obj[] | undefined) ?? []),
      ...((op.parameters as Obj[] | undefined) ?? []),
    ];
    return all.map((p) => this.resolve(p));
  }

  operation(method: string, path: string, op: Obj, pathItem: Record<string, Obj>): string {
    const id = String(op.operationId ?? `${method}-${path}`);
    const params = this.parameters(op, pathItem);
    const security = (op.security as Obj[] | undefined) ?? [];
    const scopes = security.flatMap((s) => Object.values(s).flat() as string[]);
    const access =
      security.length === 0
        ? "public"
        : `bearer token${scopes.length > 0 ? ` with ${scopes.map((s) => `<code>${esc(s)}</code>`).join(", ")}` : ""}`;
    const paramRows = params
      .map(
        (p) =>
          `<tr><td><code>${esc(String(p.name))}</code>${p.required === true ? ' <span class="req">required</span>' : ""}</td><td>${esc(String(p.in))}</td><td>${this.typeOf(p.schema as Obj | undefined)}</td><td>${prose(p.description as string | undefined)}</td></tr>`,
      )
      .join("");
    const body = op.requestBody === undefined ? undefined : this.resolve(op.requestBody as Obj);
    const bodyContent = (body?.content ?? {}) as Record<string, Obj>;
    const bodyTypes = Object.keys(bodyContent);
    const bodyHtml =
      body === undefined
        ? ""
        : `<h4>Request body${body.required === true ? ' <span class="req">required</span>' : ""}</h4>${prose(body.description as string | undefined)}${bodyTypes
            .map(
              (t) =>
                `<p class="media"><code>${esc(t)}</code></p>${this.schemaBlock(bodyContent[t]!.schema as Obj | undefined)}${this.exampleBlock(bodyContent[t], bodyContent[t]!.schema as Obj | undefined, t)}`,
            )
            .join("")}`;
    const responses = Object.entries((op.responses ?? {}) as Record<string, Obj>)
      .map(([status, r]) => {
        const res = this.resolve(r);
        const content = (res.content ?? {}) as Record<string, Obj>;
        const media = Object.entries(content)
          .map(([t, m]) =>
            // Answers are shown in full; errors name their schema (Problem) by link.
            status.startsWith("2")
              ? `<p class="media"><code>${esc(t)}</code></p>${this.schemaBlock(m.schema as Obj | undefined)}${this.exampleBlock(m, m.schema as Obj | undefined, t)}`
              : `<p class="media"><code>${esc(t)}</code> ${this.typeOf(m.schema as Obj | undefined)}</p>`,
          )
          .join("");
        return `<details${status.startsWith("2") ? " open" : ""}><summary><span class="status s${esc(status[0] ?? "")}">${esc(status)}</span> ${esc(
          String(res.description ?? "")
            .split("\n")[0]!
            .slice(0, 160),
        )}</summary>${prose(res.description as string | undefined)}${media}</details>`;
      })
      .join("");
    // The try-it form: one input per path/query/header parameter, a body for operations that take one.
    const inputs = params
      .filter((p) => p.in === "path" || p.in === "query" || p.in === "header")
      .map((p) => {
        const ex = this.example(p.schema as Obj | undefined);
        const placeholder = p.example ?? (ex === "string" ? "" : ex);
        return `<label>${esc(String(p.name))} <small>(${esc(String(p.in))})</small><input data-in="${esc(String(p.in))}" data-name="${esc(String(p.name))}"${p.required === true ? " required" : ""} placeholder="${esc(placeholder === null || placeholder === undefined ? "" : String(placeholder))}"></label>`;
      })
      .join("");
    const firstType = bodyTypes[0];
    const bodyExample =
      firstType === undefined
        ? ""
        : firstType.includes("json")
          ? JSON.stringify(this.example(bodyContent[firstType]!.schema as Obj | undefined), null, 2)
          : "hello, log";
    const tryIt = `<form class="try" data-method="${esc(method.toUpperCase())}" data-path="${esc(path)}"><p class="label">Try it</p>${inputs}${
      firstType === undefined
        ? ""
        : `<label>body <small>(${esc(firstType)})</small><textarea data-body data-type="${esc(firstType)}" rows="${Math.min(12, bodyExample.split("\n").length + 1)}">${esc(bodyExample)}</textarea></label>`
    }<button type="submit">Send ${esc(method.toUpperCase())} ${esc(path)}</button><pre class="out" hidden></pre></form>`;
    return `<section class="op" id="${esc(anchor("op", id))}" data-operation="${esc(id)}">
<h3><span class="method m-${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code> <small>${esc(id)}</small></h3>
<p class="summary">${esc(String(op.summary ?? ""))} · <span class="access">${access}</span></p>
${prose(op.description as string | undefined)}
${paramRows === "" ? "" : `<h4>Parameters</h4><table class="params"><thead><tr><th>name</th><th>in</th><th>type</th><th>meaning</th></tr></thead><tbody>${paramRows}</tbody></table>`}
${bodyHtml}
<h4>Responses</h4>${responses}
${tryIt}
</section>`;
  }

  page(script: string, style: string): string {
    const { doc } = this;
    const ops: { tag: string; html: string; toc: string }[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (op === undefined) continue;
        const tag = ((op.tags as string[] | undefined) ?? ["other"])[0]!;
        const id = String(op.operationId ?? `${method}-${path}`);
        ops.push({
          tag,
          html: this.operation(method, path, op, item),
          toc: `<li><a href="#${esc(anchor("op", id))}"><span class="method m-${esc(method)}">${esc(method.toUpperCase())}</span> ${esc(path)}</a></li>`,
        });
      }
    }
    const tags = [...(doc.tags ?? []).map((t) => t.name), ...new Set(ops.map((o) => o.tag))].filter(
      (t, i, all) => all.indexOf(t) === i,
    );
    const tagInfo = new Map((doc.tags ?? []).map((t) => [t.name, t.description ?? ""]));
    const toc = tags
      .map(
        (t) =>
          `<li><a href="#${esc(anchor("tag", t))}">${esc(t)}</a><ul>${ops
            .filter((o) => o.tag === t)
            .map((o) => o.toc)
            .join("")}</ul></li>`,
      )
      .join("");
    const sections = tags
      .map(
        (t) =>
          `<h2 id="${esc(anchor("tag", t))}">${esc(t)}</h2>${prose(tagInfo.get(t))}${ops
            .filter((o) => o.tag === t)
            .map((o) => o.html)
            .join("\n")}`,
      )
      .join("\n");
    const schemas = Object.entries(doc.components.schemas ?? {})
      .map(
        ([name, s]) =>
          `<section class="schema" id="${esc(anchor("schema", name))}"><h3><code>${esc(name)}</code></h3>${prose(s.description as string | undefined)}${this.schemaBlock({ ...s, description: null } as Obj)}</section>`,
      )
      .join("\n");
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)} ${esc(doc.info.version)} — API reference</title>
<style>${style}</style></head>
<body><nav><p><strong>${esc(doc.info.title)}</strong> ${esc(doc.info.version)}</p><ul>${toc}<li><a href="#schemas">schemas</a></li></ul></nav>
<main>
<h1>${esc(doc.info.title)} — API reference</h1>
${prose(doc.info.description)}
<p>Rendered from <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(String((doc as unknown as Obj).openapi ?? ""))}). “Try it” sends requests from this page to this server.</p>
<div class="token"><label>Bearer token <input id="token" type="password" autocomplete="off" placeholder="vellum_…"></label> <button type="button" id="forget">forget</button> <small>Kept in this tab's sessionStorage only; sent as <code>Authorization: Bearer …</code> with each “try it” request.</small></div>
${sections}
<h2 id="schemas">schemas</h2>
${schemas}
</main>
<script>${script}</script>
</body></html>`;
  }
}

/** The browser side of "try it" (no dependencies; sends only to this origin). */
const SCRIPT = `"use strict";
(function () {
  var KEY = "vellum.docs.token";
  var token = document.getElementById("token");
  try { token.value = sessionStorage.getItem(KEY) || ""; } catch (e) {}
  token.addEventListener("input", function () {
    try { sessionStorage.setItem(KEY, token.value); } catch (e) {}
  });
  document.getElementById("forget").addEventListener("click", function () {
    token.value = "";
    try { sessionStorage.removeItem(KEY); } catch (e) {}
  });
  document.querySelectorAll("form.try").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var out = form.querySelector(".out");
      var path = form.dataset.path;
      var query = new URLSearchParams();
      var headers = {};
      form.querySelectorAll("input[data-in]").forEach(function (input) {
        var v = input.value;
        if (v === "") return;
        if (input.dataset.in === "path") path = path.replace("{" + input.dataset.name + "}", encodeURIComponent(v));
        else if (input.dataset.in === "query") query.set(input.dataset.name, v);
        else headers[input.dataset.name] = v;
      });
      if (/[{}]/.test(path)) { out.hidden = false; out.textContent = "fill in the path parameters"; return; }
      if (token.value !== "") headers.Authorization = "Bearer " + token.value.trim();
      var init = { method: form.dataset.method, headers: headers };
      var body = form.querySelector("textarea[data-body]");
      if (body) { init.body = body.value; headers["Content-Type"] = body.dataset.type; }
      var url = path + (query.toString() === "" ? "" : "?" + query.toString());
      out.hidden = false;
      out.textContent = init.method + " " + url + " …";
      var started = performance.now();
      fetch(url, init).then(function (res) {
        return res.text().then(function (text) {
          var lines = [res.status + " " + res.statusText + " (" + Math.round(performance.now() - started) + " ms)"];
          res.headers.forEach(function (v, k) { lines.push(k + ": " + v); });
          var shown = text;
          if ((res.headers.get("Content-Type") || "").indexOf("json") >= 0) {
            try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) {}
          }
          out.textContent = lines.join("\\n") + "\\n\\n" + shown;
        });
      }).catch(function (e) { out.textContent = "request failed: " + e; });
    });
  });
})();
`;

const STYLE = `body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;display:flex}
nav{position:sticky;top:0;height:100vh;overflow:auto;width:17rem;flex:none;padding:1rem;border-right:1px solid #ddd;font-size:13px;box-sizing:border-box}
nav ul{list-style:none;padding-left:.6rem;margin:.2rem 0}nav a{text-decoration:none;color:inherit}
main{max-width:58rem;padding:1rem 2rem;min-width:0}
code,pre,textarea,input{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:#f4f5f7;padding:.6rem;overflow:auto;border-radius:4px}
table{border-collapse:collapse;width:100%;margin:.4rem 0}td,th{border-bottom:1px solid #e3e3e3;padding:.3rem .5rem;text-align:left;vertical-align:top}td p{margin:0}
.op{border-top:2px solid #e3e3e3;padding-top:.5rem;margin-top:1.5rem}.op h3 small{color:#777;font-weight:normal}
.method{display:inline-block;min-width:3.4rem;font-size:12px;font-weight:bold}.m-get{color:#0a6}.m-post{color:#06c}.m-delete{color:#c20}
.req{color:#c20;font-size:11px}.status{font-weight:bold}.s2{color:#0a6}.s4{color:#b60}.s5{color:#c20}
.label{font-weight:bold;margin:.4rem 0 .2rem}.media{margin:.3rem 0}
form.try{background:#f8f9fb;border:1px solid #e3e3e3;border-radius:4px;padding:.6rem;margin:.8rem 0}
form.try label{display:block;margin:.3rem 0}form.try input,form.try textarea{width:100%;box-sizing:border-box}
.token{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #ddd;z-index:1}
details{margin:.2rem 0}summary{cursor:pointer}
@media (max-width:800px){nav{display:none}}`;

const hash = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

/** The page's Content-Security-Policy: this script and style only, requests only to this origin. */
export const DOCS_CSP = `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** Renders the reference page for an OpenAPI document (JSON text). */
export function renderDocs(openapiText: string): string {
  return new Renderer(JSON.parse(openapiText) as Document).page(SCRIPT, STYLE);
}
