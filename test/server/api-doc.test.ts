/**
 * The API documents against the real server, so they cannot drift from the code:
 * - every `# example:` block of spec/api.md runs (bash + curl) in document order against a fresh
 *   server (built as `vellum serve` builds it, on a temp LevelDB), exits 0 and prints each of its
 *   `# expect:` texts; every answer the server gives meanwhile must be one that
 *   spec/openapi.json declares (status, Content-Type, required headers, body schema), and every
 *   operation must have been answered with a 2xx at least once;
 * - GET /openapi.json is spec/openapi.json byte for byte (valid JSON, 2-space indented);
 * - the routes registered in the hono app and the operations in the document are the same set;
 * - the problem-code tables (problem.ts, openapi.json, api.md) agree.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenStore } from "../../src/auth/tokens.js";
import { openDataDir } from "../../src/cli/datadir.js";
import { openServerIndex, type ServerIndex } from "../../src/cli/serve-index.js";
import { silentLogger } from "../../src/core/logger.js";
import { Log } from "../../src/log/log.js";
import { installNodeCrypto } from "../../src/platform/node-crypto.js";
import { createApp } from "../../src/server/app.js";
import { Metrics } from "../../src/server/metrics.js";
import { type ProblemCode, statusOf } from "../../src/server/problem.js";
import { openLevelDatabase } from "../../src/storage/level.js";
import type { Database } from "../../src/storage/types.js";

const SPEC = new URL("../../spec/", import.meta.url);
const OPENAPI_TEXT = readFileSync(new URL("openapi.json", SPEC), "utf8");
const API_MD = readFileSync(new URL("api.md", SPEC), "utf8");

// ---- the OpenAPI document, as far as these checks read it ----------------------------------

type Schema = Record<string, unknown>;
interface MediaType {
  schema?: Schema;
}
interface Header {
  required?: boolean;
  schema?: Schema;
  $ref?: string;
}
interface Response {
  $ref?: string;
  content?: Record<string, MediaType>;
  headers?: Record<string, Header>;
}
interface Parameter {
  $ref?: string;
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  summary?: string;
  operationId?: string;
  parameters?: Parameter[];
  responses: Record<string, Response>;
  "x-vellum-route"?: string;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
}

const doc = JSON.parse(OPENAPI_TEXT) as Document;

function resolve<T>(value: T & { $ref?: string }): T {
  const ref = value.$ref;
  if (ref === undefined) return value;
  const [, , kind, name] = ref.split("/");
  const target = doc.components[kind!]?.[name!];
  if (target === undefined) throw new Error(`unresolved $ref ${ref}`);
  return resolve(target as T & { $ref?: string });
}

const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
);

// ---- a small JSON Schema (2020-12) validator for the keywords openapi.json uses --------------

const ANNOTATIONS = new Set([
  "description",
  "format",
  "contentEncoding",
  "contentMediaType",
  "default",
  "examples",
  "x-vellum-status",
]);

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/** The reasons `value` does not match `schema` (empty when it does). */
function validate(schemaIn: Schema, value: unknown, at = "$"): string[] {
  const schema = resolve(schemaIn as Schema & { $ref?: string });
  const errors: string[] = [];
  const fail = (why: string) => errors.push(`${at}: ${why}`);
  for (const [keyword, arg] of Object.entries(schema)) {
    if (ANNOTATIONS.has(keyword) || keyword === "$ref") continue;
    const a = arg as never;
    switch (keyword) {
      case "type": {
        const types = Array.isArray(arg) ? (arg as string[]) : [arg as string];
        const actual = typeOf(value);
        if (!types.includes(actual) && !(actual === "integer" && types.includes("number")))
          fail(`is ${actual}, not ${types.join(" or ")}`);
        break;
      }
      case "const":
        if (JSON.stringify(value) !== JSON.stringify(arg))
          fail(`is ${JSON.stringify(value)}, not ${JSON.stringify(arg)}`);
        break;
      case "enum":
        if (!(arg as unknown[]).some((v) => JSON.stringify(v) === JSON.stringify(value)))
          fail(`${JSON.stringify(value)} is not one of ${JSON.stringify(arg)}`);
        break;
      case "pattern":
        if (typeof value === "string" && !new RegExp(a, "u").test(value))
          fail(`${JSON.stringify(value.slice(0, 80))} does not match ${a}`);
        break;
      case "minLength":
      case "maxLength":
        if (typeof value === "string") {
          const n = [...value].length;
          if (keyword === "minLength" ? n < a : n > a) fail(`length ${n} breaks ${keyword} ${a}`);
        }
        break;
      case "minimum":
      case "maximum":
        if (typeof value === "number" && (keyword === "minimum" ? value < a : value > a))
          fail(`${value} breaks ${keyword} ${a}`);
        break;
      case "minItems":
      case "maxItems":
        if (Array.isArray(value) && (keyword === "minItems" ? value.length < a : value.length > a))
          fail(`${value.length} items break ${keyword} ${a}`);
        break;
      case "uniqueItems":
        if (Array.isArray(value) && arg === true) {
          const seen = new Set(value.map((v) => JSON.stringify(v)));
          if (seen.size !== value.length) fail("items are not unique");
        }
        break;
      case "items":
        if (Array.isArray(value))
          value.forEach((v, i) => {
            errors.push(...validate(a, v, `${at}[${i}]`));
          });
        break;
      case "properties":
        if (typeOf(value) === "object") {
          for (const [name, sub] of Object.entries(arg as Record<string, Schema>)) {
            const v = (value as Record<string, unknown>)[name];
            if (v !== undefined) errors.push(...validate(sub, v, `${at}.${name}`));
          }
        }
        break;
      case "required":
        if (typeOf(value) === "object")
          for (const name of arg as string[])
            if (!(name in (value as object))) fail(`lacks required "${name}"`);
        break;
      case "additionalProperties":
        if (typeOf(value) === "object") {
          const known = Object.keys((schema.properties as object | undefined) ?? {});
          for (const [name, v] of Object.entries(value as object)) {
            if (known.includes(name)) continue;
            if (arg === false) fail(`has undocumented property "${name}"`);
            else errors.push(...validate(a, v, `${at}.${name}`));
          }
        }
        break;
      case "oneOf": {
        const matching = (arg as Schema[]).filter((s) => validate(s, value, at).length === 0);
        if (matching.length !== 1) fail(`matches ${matching.length} of the oneOf schemas, not 1`);
        break;
      }
      default:
        fail(`the test's validator does not know the keyword "${keyword}"`);
    }
  }
  return errors;
}

// ---- matching a request to its operation ------------------------------------------------------

/** Path templates, most literal characters first (so `/v1/entries/batch` beats `{index}`). */
const templates = Object.entries(doc.paths)
  .map(([path, item]) => {
    // A path served by a wildcard route ("/tile/*") ends in a parameter that spans segments.
    const wildcard = Object.values(item).some((op) => op["x-vellum-route"]?.endsWith("*"));
    const names: string[] = [];
    const parts = path.split(/\{(\w+)\}/);
    let source = "^";
    parts.forEach((part, i) => {
      if (i % 2 === 0) source += part.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
      else {
        names.push(part);
        source += wildcard && i === parts.length - 2 ? "(.+)" : "([^/]+)";
      }
    });
    return {
      path,
      item,
      names,
      re: new RegExp(`${source}$`),
      literal: path.replace(/\{\w+\}/g, ""),
    };
  })
  .sort((a, b) => b.literal.length - a.literal.length);

function match(method: string, pathname: string) {
  for (const t of templates) {
    const m = t.re.exec(pathname);
    if (m === null) continue;
    const op = t.item[(method === "HEAD" ? "get" : method).toLowerCase()];
    const params = Object.fromEntries(t.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
    return { path: t.path, op, params };
  }
  return undefined;
}

/** A parameter value from a URL as the JSON value its schema describes. */
function parameterValue(schema: Schema, text: string): unknown {
  const type = resolve(schema as Schema & { $ref?: string }).type;
  if (type === "integer") return /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : text;
  return text;
}

interface Exchange {
  method: string;
  url: URL;
  status: number;
  headers: Headers;
  body: Promise<ArrayBuffer>;
}

/** Everything openapi.json says about this answer that it does not fit. */
async function checkExchange(x: Exchange): Promise<string[]> {
  const what = `${x.method} ${x.url.pathname}${x.url.search} -> ${x.status}`;
  const text = new TextDecoder().decode(await x.body);
  const contentType = x.headers.get("Content-Type") ?? "";
  const found = match(x.method, x.url.pathname);
  if (found === undefined || found.op === undefined) {
    // Not an operation: the global answers (unknown route, or a known path with another method).
    const code = found === undefined ? "ROUTE_NOT_FOUND" : "METHOD_NOT_ALLOWED";
    const problem = JSON.parse(text) as { code?: string };
    if (problem.code !== code) return [`${what}: expected a ${code} problem, got ${text}`];
    if (code === "METHOD_NOT_ALLOWED" && x.headers.get("Allow") === null)
      return [`${what}: 405 without an Allow header`];
    return validate({ $ref: "#/components/schemas/Problem" }, problem).map((e) => `${what}: ${e}`);
  }
  const { op, params } = found;
  const declared = op.responses[String(x.status)];
  if (declared === undefined) return [`${what}: status ${x.status} is not documented`];
  const response = resolve(declared);
  const errors: string[] = [];
  const media = response.content?.[contentType];
  if (response.content !== undefined && media === undefined) {
    errors.push(
      `Content-Type "${contentType}" is not one of ${Object.keys(response.content).join(", ")}`,
    );
  }
  if (media?.schema !== undefined) {
    if (contentType.includes("json")) errors.push(...validate(media.schema, JSON.parse(text)));
    else if (contentType.startsWith("text/")) errors.push(...validate(media.schema, text));
  }
  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const header = resolve(h);
    const value = x.headers.get(name);
    if (value === null) {
      if (header.required === true) errors.push(`the required header ${name} is missing`);
    } else if (header.schema !== undefined) {
      errors.push(...validate(header.schema, parameterValue(header.schema, value), name));
    }
  }
  if (x.status < 300) {
    // A request the server accepted must fit the documented parameters.
    const declaredParams = (op.parameters ?? []).map((p) => resolve(p));
    for (const p of declaredParams.filter((p) => p.in === "path")) {
      const v = params[p.name];
      if (v === undefined) errors.push(`path parameter ${p.name} is not in the template`);
      else errors.push(...validate(p.schema!, parameterValue(p.schema!, v), p.name));
    }
    for (const [name, v] of x.url.searchParams) {
      const p = declaredParams.find((q) => q.in === "query" && q.name === name);
      if (p === undefined) errors.push(`query parameter ${name} is not documented`);
      else errors.push(...validate(p.schema!, parameterValue(p.schema!, v), name));
    }
  }
  return errors.map((e) => `${what}: ${e}`);
}

// ---- the examples in api.md -----------------------------------------------------------------

interface Example {
  name: string;
  script: string;
  expects: string[];
}

function examples(markdown: string): Example[] {
  const out: Example[] = [];
  for (const m of markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    const script = m[1]!;
    const name = /^# example: (\S+)\n/.exec(script)?.[1];
    if (name === undefined) continue;
    const expects = [...script.matchAll(/^# expect: (.*)$/gm)].map((e) => e[1]!);
    out.push({ name, script, expects });
  }
  return out;
}

function run(
  script: string,
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, failed) => {
    // -e and pipefail: a failing step inside an example fails it, not only its last command.
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", failed);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

const hasCurl = spawnSync("curl", ["--version"]).error === undefined;
const hasBash = spawnSync("bash", ["--version"]).error === undefined;
const missing = !hasCurl ? "curl is not installed" : !hasBash ? "bash is not installed" : "";

// ---- the server -------------------------------------------------------------------------------

let dir: string;
let db: Database;
let log: Log;
let index: ServerIndex;
let accessLog: Log;
let accessIndex: ServerIndex;
let app: ReturnType<typeof createApp>;
let server: ReturnType<typeof serve>;
let base: string;
let adminToken: string;
const exchanges: Exchange[] = [];

beforeAll(async () => {
  installNodeCrypto(); // as the `vellum` command does
  dir = mkdtempSync(join(tmpdir(), "vellum-api-doc-"));
  // Built as src/cli/serve.ts builds it (runServe itself owns signals and process.exit).
  const files = openDataDir(join(dir, "data"), { origin: "api-doc.test/vellum" });
  db = await openLevelDatabase(files.dbPath);
  const tokens = await TokenStore.open(db.namespace("tokens"));
  adminToken = (await tokens.create("admin (first start)", ["admin", "append", "read", "audit"]))
    .token;
  const metrics = new Metrics();
  log = await Log.open({ origin: files.origin, seed: files.seed, kv: db.namespace("log") });
  metrics.gauge("vellum_tree_size", "Entries in the latest published checkpoint.", () => log.size);
  metrics.gauge("vellum_queue_entries", "Entries waiting to be sequenced.", () => log.queueLength);
  index = await openServerIndex({
    dataDir: files.dir,
    place: { kv: db.namespace("index-log") },
    log,
    origin: files.origin,
    seed: files.seed,
    logger: silentLogger,
  });
  accessLog = await Log.open({
    origin: `${files.origin}/access`,
    seed: files.seed,
    kv: db.namespace("access-log"),
    batchMaxAgeMs: 0,
    checkpointIntervalMs: 0,
  });
  accessIndex = await openServerIndex({
    dataDir: files.dir,
    place: { kv: db.namespace("access-index-log") },
    log: accessLog,
    origin: `${files.origin}/access`,
    seed: files.seed,
    logger: silentLogger,
    storeDir: "access-index",
  });
  app = createApp({ log, tokens, metrics, index, accessLog, accessIndex });
  const recording = async (req: Request) => {
    const res = await app.fetch(req);
    exchanges.push({
      method: req.method,
      url: new URL(req.url),
      status: res.status,
      headers: res.headers,
      body: res.clone().arrayBuffer(),
    });
    return res;
  };
  const port = await new Promise<number>((done) => {
    server = serve({ fetch: recording, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
      done(info.port),
    );
  });
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
  await index?.close();
  await accessIndex?.close();
  await accessLog?.close();
  await log?.close();
  await db?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

// ---- the tests ----------------------------------------------------------------------------------

describe("spec/api.md examples", () => {
  const all = examples(API_MD);

  it("has examples with unique names", () => {
    expect(all.length).toBeGreaterThan(20);
    expect(new Set(all.map((e) => e.name)).size).toBe(all.length);
  });

  it.skipIf(missing !== "")(
    `run in order against a fresh server${missing === "" ? "" : ` (skipped: ${missing})`}`,
    async () => {
      const cwd = join(dir, "examples");
      rmSync(cwd, { recursive: true, force: true });
      mkdirSync(cwd, { recursive: true });
      const failures: string[] = [];
      for (const ex of all) {
        const r = await run(ex.script, { VELLUM: base, TOKEN: adminToken }, cwd);
        const missingTexts = ex.expects.filter((t) => !r.stdout.includes(t));
        if (r.code !== 0 || missingTexts.length > 0) {
          failures.push(
            `example "${ex.name}": exit ${r.code}` +
              missingTexts.map((t) => `\n  output lacks: ${t}`).join("") +
              `\n  stdout: ${r.stdout.trim().slice(0, 600)}\n  stderr: ${r.stderr.trim().slice(0, 600)}`,
          );
        }
      }
      expect.soft(failures).toEqual([]);

      // Every answer the examples got is one the OpenAPI document declares.
      expect(exchanges.length).toBeGreaterThan(all.length);
      const wrong = (await Promise.all(exchanges.map(checkExchange))).flat();
      expect.soft(wrong).toEqual([]);

      // Every operation was answered successfully at least once: each has a working example.
      const untried = operations
        .filter(
          ({ path, method }) =>
            !exchanges.some((x) => {
              const m = match(x.method, x.url.pathname);
              return m?.path === path && x.method === method && x.status < 300;
            }),
        )
        .map(({ path, method }) => `${method} ${path}`);
      expect.soft(untried).toEqual([]);
    },
  );
});

describe("spec/openapi.json", () => {
  it("is served byte for byte at /openapi.json", async () => {
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("application/json");
    expect(await res.text()).toBe(OPENAPI_TEXT);
  });

  it("is valid JSON, 2-space indented, ending in a newline", () => {
    expect(`${JSON.stringify(JSON.parse(OPENAPI_TEXT), null, 2)}\n`).toBe(OPENAPI_TEXT);
    expect((JSON.parse(OPENAPI_TEXT) as { openapi: string }).openapi).toBe("3.1.0");
  });

  it("documents exactly the routes the hono app registers", () => {
    // Middleware (app.use) shows up as method ALL on a wildcard path; anything else is a route.
    const registered = new Set<string>();
    for (const r of app.routes) {
      if (r.method === "ALL" && r.path.endsWith("*")) continue;
      registered.add(`${r.method} ${r.path}`);
    }
    const documented = new Set(
      operations.map(
        ({ path, method, op }) =>
          `${method} ${op["x-vellum-route"] ?? path.replace(/\{(\w+)\}/g, ":$1")}`,
      ),
    );
    expect([...documented].sort()).toEqual([...registered].sort());
  });

  it("gives every operation a unique operationId and a short summary", () => {
    const ids = operations.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(operations.length);
    for (const { path, method, op } of operations) {
      expect(op.summary, `${method} ${path}`).toMatch(/^.{3,32}$/);
      for (const [status, r] of Object.entries(op.responses)) {
        // Every error answer is a problem; only /readyz's 503 is plain JSON.
        if (Number(status) >= 400 && !(path === "/readyz" && status === "503")) {
          expect(Object.keys(resolve(r).content ?? {}), `${method} ${path} ${status}`).toEqual([
            "application/problem+json",
          ]);
        }
      }
    }
  });
});

describe("problem codes", () => {
  // Exhaustive by type: adding a code to ProblemCode without listing it here fails tsc.
  const ALL: Record<ProblemCode, true> = {
    MALFORMED: true,
    INVALID_EVENT: true,
    OUT_OF_RANGE: true,
    TOO_LARGE: true,
    PROOF_LENGTH: true,
    PROOF_MISMATCH: true,
    BAD_SIGNATURE: true,
    NO_KNOWN_SIGNATURE: true,
    BAD_KEY: true,
    QUORUM_NOT_MET: true,
    INCONSISTENT: true,
    NOT_FOUND: true,
    CONFLICT: true,
    OVERLOADED: true,
    UNAVAILABLE: true,
    STORAGE_FAILURE: true,
    LOCKED: true,
    STATE_MISMATCH: true,
    INTEGRITY_FAILURE: true,
    INTERNAL: true,
    NETWORK: true,
    UNAUTHENTICATED: true,
    FORBIDDEN: true,
    ROUTE_NOT_FOUND: true,
    METHOD_NOT_ALLOWED: true,
    PAYLOAD_TOO_LARGE: true,
    BAD_REQUEST: true,
    UNSUPPORTED_MEDIA_TYPE: true,
  };
  const codes = Object.keys(ALL) as ProblemCode[];
  const actual = Object.fromEntries(codes.map((c) => [c, statusOf(c)]));

  it("openapi.json lists every code with its status", () => {
    const schema = doc.components.schemas!.ProblemCode as {
      enum: string[];
      "x-vellum-status": Record<string, number>;
    };
    expect([...schema.enum].sort()).toEqual([...codes].sort());
    expect(schema["x-vellum-status"]).toEqual(actual);
  });

  it("api.md's table lists every code with its status", () => {
    const table: Record<string, number> = {};
    for (const m of API_MD.matchAll(/^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \| (\d{3}) \|/gm)) {
      for (const c of m[1]!.matchAll(/`([A-Z_]+)`/g)) table[c[1]!] = Number(m[2]);
    }
    expect(table).toEqual(actual);
  });
});
