/**
 * @module
 * A standing-by server's front end (spec/storage.md, "Front ends"): while another server holds
 * the writer lease, this one still answers on its address by forwarding every request, as it
 * came, to the writer the lease names (its advertised URL), and every answer back as it went.
 * Submissions, reads, tokens and the access log are then all the writer's, exactly as if the
 * client had asked it; a load balancer may send traffic to any server. When the writer cannot be
 * reached (it died and its lease has not run out yet), the answer is 503 UNAVAILABLE with
 * Retry-After: a standby takes over within the lease.
 *
 * `/healthz` and `/readyz` are answered here: ready (200) with `"role": "standby"` and the
 * writer's URL, so that a balancer keeps sending traffic during a takeover.
 *
 * With the log's bucket (`--archive`/`--bucket`), full hash tiles — public, immutable, the bulk of
 * any client's reads — are served here from the bucket (the original, locked version; cached),
 * not by the writer, and even while no writer answers. Everything else is forwarded: partial
 * tiles and checkpoints are the writer's latest, and entry bundles are entry contents, each read
 * authorized and recorded in the access log, which has one writer.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../core/logger.js";
import { isEntryBundle, parseTilePath, TILE_WIDTH } from "../core/tiles.js";

/** Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

function forwardable(headers: IncomingMessage["headers"]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

function problem(status: number, code: string, detail: string): string {
  return JSON.stringify({
    type: "about:blank",
    title: "Service Unavailable",
    status,
    code,
    detail,
  });
}

/** Reads a full hash tile's bytes from the log's bucket (undefined: not archived yet). */
export type FullTileSource = (level: number, index: number) => Promise<Uint8Array | undefined>;

/** A full hash tile's request path (`/tile/<L>/<N>`, no width, not a bundle), or undefined. */
function fullHashTile(path: string): { level: number; index: number } | undefined {
  if (!path.startsWith("/tile/") || path.startsWith("/tile/entries/")) return undefined;
  try {
    const tile = parseTilePath(path.slice(1));
    return tile.width === TILE_WIDTH && !isEntryBundle(tile)
      ? { level: tile.level as number, index: tile.index }
      : undefined;
  } catch {
    return undefined; // the writer answers a malformed path with its own problem
  }
}

export interface StandbyProxy {
  /** The address it listens on (the writer's, once this server takes over). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens on host:port and forwards to `writerUrl()` (looked up at most every 500 ms; undefined
 * while no writer has advertised itself).
 */
export function startStandbyProxy(options: {
  readonly host: string;
  readonly port: number;
  readonly writerUrl: () => Promise<string | undefined>;
  readonly logger: Logger;
  /** Where full hash tiles are read from instead of the writer (the log's bucket). */
  readonly fullTiles?: FullTileSource;
}): Promise<StandbyProxy> {
  let cached: { url: string | undefined; at: number } | undefined;
  const writer = async () => {
    if (cached === undefined || Date.now() - cached.at > 500) {
      cached = { url: await options.writerUrl().catch(() => undefined), at: Date.now() };
    }
    return cached.url;
  };
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    if (path === "/healthz" || path === "/readyz") {
      void writer().then((url) => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ status: "ready", role: "standby", writer: url ?? null }));
      });
      return;
    }
    const tile = req.method === "GET" ? fullHashTile(path) : undefined;
    if (tile !== undefined && options.fullTiles !== undefined) {
      options.fullTiles(tile.level, tile.index).then(
        (bytes) => {
          if (bytes === undefined) return void forwardToWriter();
          res.writeHead(200, {
            "Content-Type": "application/octet-stream",
            "Cache-Control": "public, max-age=31536000, immutable",
            "Access-Control-Allow-Origin": "*",
            "Content-Length": String(bytes.length),
            "X-Vellum-Source": "bucket",
          });
          res.end(bytes);
          req.resume();
        },
        (e: Error) => {
          options.logger.warn(`standing by: reading ${path} from the bucket: ${e.message}`);
          void forwardToWriter();
        },
      );
      return;
    }
    void forwardToWriter();
    async function forwardToWriter(): Promise<void> {
      const url = await writer();
      const unavailable = (detail: string) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        res.writeHead(503, { "Content-Type": "application/problem+json", "Retry-After": "1" });
        res.end(problem(503, "UNAVAILABLE", detail));
      };
      if (url === undefined) {
        unavailable("this server is standing by and no writer has advertised itself yet");
        req.resume();
        return;
      }
      const target = new URL(path, url);
      const headers = forwardable(req.headers);
      const via = req.socket.remoteAddress ?? "";
      headers["x-forwarded-for"] = [req.headers["x-forwarded-for"], via]
        .filter((x) => x !== undefined && x !== "")
        .join(", ");
      const upstream = httpRequest(
        target,
        { method: req.method, headers, timeout: 30_000 },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers));
          answer.pipe(res);
        },
      );
      upstream.on("timeout", () =>
        upstream.destroy(new Error("the writer did not answer in 30 s")),
      );
      upstream.on("error", (e) => {
        options.logger.warn(
          `standing by: forwarding ${req.method} ${path} to ${url}: ${e.message}`,
        );
        cached = undefined; // look the writer up again: it may have changed
        unavailable(
          `this server is standing by and the writer (${url}) cannot be reached (${e.message}); a standby takes over within seconds`,
        );
      });
      req.pipe(upstream);
    }
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
