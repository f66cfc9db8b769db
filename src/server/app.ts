/**
 * @module
 * The HTTP API (spec/api.md, spec/openapi.json): a thin hono app over one Log. This file holds
 * what applies to every request — the request counter, problem+json errors, 404/405, bearer
 * authentication — and mounts the route modules in routes/. Handlers parse and check input,
 * call the log, and shape JSON. There is no route that updates or deletes an entry.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { TrieRouter } from "hono/router/trie-router";
import { AccessRecorder } from "../audit/access.js";
import type { Scope, TokenStore } from "../auth/tokens.js";
import { type Logger, silentLogger } from "../core/logger.js";
import type { Indexer } from "../indexing/engine.js";
import type { Log } from "../log/log.js";
import { BodyBudget } from "./body-budget.js";
import { type Env, LIMITS, type RouteContext } from "./http.js";
import { Metrics } from "./metrics.js";
import { HttpProblem, problemOf } from "./problem.js";
import { accessRoutes } from "./routes/access.js";
import { entryRoutes } from "./routes/entries.js";
import { eventRoutes } from "./routes/events.js";
import { type ExplorerAssets, explorerRoutes } from "./routes/explorer.js";
import { OPENAPI_TEXT, operationRoutes } from "./routes/operations.js";
import { proofRoutes } from "./routes/proofs.js";
import { submitRoutes } from "./routes/submit.js";
import { tileRoutes } from "./routes/tiles.js";
import { tokenRoutes } from "./routes/tokens.js";

export { LIMITS, OPENAPI_TEXT };

export interface AppOptions {
  readonly log: Log;
  readonly tokens: TokenStore;
  /** Entries and entry bundles readable without a token. */
  readonly publicReads?: boolean;
  readonly metrics?: Metrics;
  /** Where each request's line and each internal error go (default: nowhere). */
  readonly logger?: Logger;
  /** Most entries in one batch request. */
  readonly maxBatchEntries?: number;
  /** Most bytes of request bodies in flight at once, all requests together (default 64 MiB). */
  readonly bodyBudgetBytes?: number;
  /**
   * The access log (src/audit/access.ts): every read of entry contents is recorded there before
   * it is answered (fail closed); served under /access/, its entry bundles to the `audit` scope.
   */
  readonly accessLog?: Log;
  /** The access log's verifiable index (GET /v1/access; its log under /access/index/). */
  readonly accessIndex?: {
    readonly indexLog: Log;
    readonly indexer: Indexer | undefined;
    readonly failure: string | undefined;
  };
  /**
   * The verifiable index of the log's events: its log (served under /index/) and the indexer
   * answering index queries (undefined when it could not be opened: `failure` says why).
   */
  readonly index?: {
    readonly indexLog: Log;
    readonly indexer: Indexer | undefined;
    readonly failure: string | undefined;
  };
  /** The explorer's page, script and style sheet (served at /; routes/explorer.ts). */
  readonly explorer?: ExplorerAssets;
}

const STATUS_CLASS = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

/**
 * A client's X-Request-Id is kept when it is sane: 1-128 characters of letters, digits and
 * `-_.:@/+=` (what UUIDs, ULIDs, trace ids and proxies' ids use); anything else is replaced, so a
 * log line or a problem body never carries a caller's arbitrary text.
 */
const SANE_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

export function requestIdOf(incoming: string | undefined): string {
  return incoming !== undefined && SANE_REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
}

/** For each route path, the methods it answers (GET implies HEAD), for 405's Allow header. */
function routeMethods(app: Hono<Env>): TrieRouter<string[]> {
  const byPath = new Map<string, Set<string>>();
  for (const route of app.routes) {
    if (route.method === "ALL" || route.method === "HEAD") continue;
    const methods = byPath.get(route.path) ?? new Set<string>();
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
    byPath.set(route.path, methods);
  }
  const router = new TrieRouter<string[]>();
  for (const [path, methods] of byPath) router.add("ALL", path, [...methods]);
  return router;
}

export function createApp(options: AppOptions): Hono<Env> {
  const { log, tokens } = options;
  const metrics = options.metrics ?? new Metrics();
  const maxBatchEntries = options.maxBatchEntries ?? LIMITS.maxBatchEntries;
  const logger = options.logger ?? silentLogger;
  const logRequest = logger.request ?? logger.info;
  const bodies = new BodyBudget(options.bodyBudgetBytes, logger);
  const app = new Hono<Env>();

  // The only middleware every request passes: kept to one await (each layer costs on the
  // hottest routes). Method checks and authentication happen where they matter instead. Once a
  // request is answered, the body bytes it reserved go back to the budget (readBody). Each
  // request is one log line: its id (also in the X-Request-Id answer header and in problem
  // bodies as `instance`), the route pattern (not the path: no ids or hashes in the log's
  // cardinality), status, latency and the token's id; never the token nor the body.
  app.use(async (c, next) => {
    const start = performance.now();
    const requestId = requestIdOf(c.req.header("X-Request-Id"));
    c.set("requestId", requestId);
    // Set before the answer exists, so every c.body/c.json answer is built with it (setting it
    // on c.res afterwards made @hono/node-server build a full Response: +16 µs per request).
    c.header("X-Request-Id", requestId);
    try {
      await next();
    } finally {
      bodies.release(c.req.raw);
    }
    const status = c.res.status;
    const seconds = (performance.now() - start) / 1000;
    const matched = routePath(c);
    const route = matched === "/*" || matched === "" ? "unmatched" : matched;
    metrics.requests.inc(STATUS_CLASS[Math.floor(status / 100)] ?? "other");
    metrics.observeRequest(c.req.method, route, seconds);
    logRequest(
      {
        requestId,
        method: c.req.method,
        route,
        status,
        ms: Math.round(seconds * 1e5) / 100,
        token: c.get("token")?.id ?? null,
      },
      "request",
    );
  });

  function problem(c: Context<Env>, error: unknown): Response {
    const { problem: body, headers } = problemOf(error, c.get("requestId"));
    metrics.errors.inc(body.code);
    if (body.code === "INTERNAL") {
      logger.error(
        { requestId: c.get("requestId"), method: c.req.method, route: routePath(c), err: error },
        `internal error answering ${c.req.method} ${c.req.path}: ${(error as Error)?.message ?? String(error)}`,
      );
    }
    return new Response(JSON.stringify(body), {
      status: body.status,
      headers: {
        "Content-Type": "application/problem+json",
        // An error is about this moment: a tile that is missing now may exist in a second.
        "Cache-Control": "no-store",
        "X-Request-Id": c.get("requestId"),
        ...headers,
      },
    });
  }
  app.onError((err, c) => problem(c, err));
  // No route matched: 405 with Allow when the path exists under other methods, else 404. Done
  // here rather than in a middleware so that matched requests do not pay for it.
  let methodsByPath: TrieRouter<string[]> | undefined;
  app.notFound((c) => {
    methodsByPath ??= routeMethods(app);
    const allowed = new Set(methodsByPath.match("ALL", c.req.path)[0].flatMap(([m]) => m));
    if (allowed.size > 0 && !allowed.has(c.req.method)) {
      const methods = [...allowed].join(", ");
      return problem(
        c,
        new HttpProblem(
          "METHOD_NOT_ALLOWED",
          `${c.req.method} is not allowed here; use ${methods}`,
          { Allow: methods },
        ),
      );
    }
    return problem(
      c,
      new HttpProblem(
        "ROUTE_NOT_FOUND",
        `no route ${c.req.method} ${c.req.path}; see /openapi.json`,
      ),
    );
  });

  /**
   * Requires a bearer token with `scope` (unless `unless`). The Authorization header is read
   * only here: a public route answers whatever header a proxy may have added.
   */
  const requireScope =
    (scope: Scope, unless = false): MiddlewareHandler<Env> =>
    async (c, next) => {
      if (!unless) {
        const header = c.req.header("Authorization");
        const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
        const info = m === null ? undefined : tokens.verify(m[1]!);
        if (info === undefined) {
          throw new HttpProblem(
            "UNAUTHENTICATED",
            header !== undefined
              ? tokens.refusal(m?.[1] ?? "")
              : `this request needs a bearer token with the "${scope}" scope`,
            {
              "WWW-Authenticate": 'Bearer realm="vellum"',
            },
          );
        }
        if (!info.scopes.includes(scope)) {
          throw new HttpProblem("FORBIDDEN", `this token lacks the "${scope}" scope`);
        }
        c.set("token", info);
      }
      await next();
    };
  const readAccess = requireScope("read", options.publicReads === true);

  const ctx: RouteContext = {
    log,
    tokens,
    metrics,
    logger,
    publicReads: options.publicReads === true,
    maxBatchEntries,
    bodies,
    requireScope,
    readAccess,
    index: options.index,
    access: options.accessLog === undefined ? undefined : new AccessRecorder(options.accessLog),
    accessIndex: options.accessIndex,
  };
  // Order matters where paths overlap (e.g. /v1/entries/by-id/:id before /v1/entries/:index).
  app.route("/", submitRoutes(ctx));
  app.route("/", eventRoutes(ctx));
  app.route("/", tileRoutes(ctx));
  if (options.accessLog !== undefined) {
    const access = tileRoutes(ctx, {
      log: options.accessLog,
      prefix: "/access",
      bundleAccess: requireScope("audit"),
      entries: "access",
    });
    app.route("/access", access);
    app.route("/", accessRoutes(ctx));
  }
  if (options.accessIndex !== undefined) {
    const log = options.accessIndex.indexLog;
    const prefix = "/access/index";
    app.route(prefix, tileRoutes(ctx, { log, publicBundles: true, prefix }));
  }
  if (options.index !== undefined) {
    const indexLog = options.index.indexLog;
    app.route("/index", tileRoutes(ctx, { log: indexLog, publicBundles: true, prefix: "/index" }));
  }
  app.route("/", proofRoutes(ctx));
  app.route("/", entryRoutes(ctx));
  app.route("/", tokenRoutes(ctx));
  app.route("/", operationRoutes(ctx));
  if (options.explorer !== undefined) app.route("/", explorerRoutes(options.explorer));
  return app;
}
