/**
 * Fixtures for the tile reader and monitor tests: a real Vellum log (memory storage, the hono
 * app) reachable over 127.0.0.1 or as an injected fetch; a fetch wrapper that tampers with
 * chosen resources; and a static, non-Vellum tlog-tiles log written to a directory and served
 * by a tiny file server (with gzip Content-Encoding on entry bundles, as CDNs do).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";
import { gzipSync } from "node:zlib";
import { serve } from "@hono/node-server";
import type { FetchLike } from "../../src/client/tiles.js";
import { type Checkpoint, formatCheckpoint } from "../../src/core/checkpoint.js";
import { rootOf } from "../../src/core/compact.js";
import { signerFromKey } from "../../src/core/keys.js";
import { signNote } from "../../src/core/note.js";
import { hashLeaf } from "../../src/core/rfc6962.js";
import {
  appendEntryBundles,
  appendHashTiles,
  type EntryBundleId,
  formatTilePath,
  type HashTileId,
} from "../../src/core/tiles.js";
import type { Log } from "../../src/log/log.js";
import { payloadOf } from "../log/helpers.js";
import { type HarnessOptions, openHarness } from "../server/helpers.js";

const closers: (() => Promise<void>)[] = [];

/** Closes every server and log these fixtures opened (call from afterAll). */
export async function closeAll(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    });
  });
}

/** A Vellum log behind the real HTTP app; `url` is on 127.0.0.1, `fetch` calls it in process. */
export async function startVellum(options: HarnessOptions = {}) {
  const h = await openHarness({ ...options, log: { checkpointIntervalMs: 0, ...options.log } });
  const url = await new Promise<string>((resolve) => {
    const s = serve({ fetch: h.app.fetch, port: 0, hostname: "127.0.0.1" }, (info) =>
      resolve(`http://127.0.0.1:${(info as AddressInfo).port}/`),
    );
    closers.push(
      () =>
        new Promise<void>((done) => {
          s.close(() => done());
        }),
    );
  });
  closers.push(() => h.log.close());
  const fetch: FetchLike = async (u, init) => h.app.request(u, init);
  return { ...h, url, fetch, vkey: h.log.signer.verifierKey };
}

/** Submits entries `${tag} i` until the log has `size` entries. */
export async function fillTo(log: Log, size: number, tag = "entry"): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (let i = log.size + log.queueLength; i < size; i++) {
    pending.push(log.submit(payloadOf(i, tag)));
    if (pending.length >= 20_000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

/**
 * Wraps a fetch: `change(path, bytes)` may return other bytes for a tile path (relative, e.g.
 * "tile/0/000.p/5"); `undefined` leaves the response alone.
 */
export function tamperingFetch(
  inner: FetchLike,
  change: (path: string, bytes: Uint8Array) => Uint8Array | undefined,
): FetchLike {
  return async (url, init) => {
    const res = await inner(url, init);
    const path = new URL(url).pathname.slice(1);
    if (!res.ok || !path.startsWith("tile/")) return res;
    const bytes = new Uint8Array(await res.arrayBuffer());
    const changed = change(path, bytes) ?? bytes;
    return new Response(changed as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers: { "Content-Type": "application/octet-stream" },
    });
  };
}

/** A copy of `bytes` with byte `at` (negative: from the end) XORed with 1. */
export function flipByte(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  const i = at < 0 ? out.length + at : at;
  out[i] = out[i]! ^ 1;
  return out;
}

// ---- a static tlog-tiles log on disk ----------------------------------------------------------

export interface StaticLog {
  readonly dir: string;
  readonly url: string;
  /** Paths requested so far, with whether the answer was gzipped. */
  readonly requests: { path: string; gzip: boolean }[];
  /** Appends entries: writes the tiles and bundles that change, leaving older partial ones. */
  grow(entries: readonly Uint8Array[]): void;
  /** Writes `checkpoint` (a signed note) for the current size. */
  publish(note: string): void;
  /** A checkpoint note for the current size, signed with `skey`. */
  sign(skey: string, origin: string): string;
  readonly size: number;
  readonly leafHashes: readonly Uint8Array[];
}

/** Serves files under a temporary directory; entry bundles gzipped when the client accepts it. */
export async function startStaticLog(): Promise<StaticLog> {
  const dir = mkdtempSync(join(tmpdir(), "vellum-static-log-"));
  const requests: { path: string; gzip: boolean }[] = [];
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).slice(
      1,
    );
    let body: Buffer;
    try {
      if (path.includes("..")) throw new Error("no");
      body = readFileSync(join(dir, path));
    } catch {
      requests.push({ path, gzip: false });
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    const gzip =
      path.startsWith("tile/entries/") && /\bgzip\b/.test(String(req.headers["accept-encoding"]));
    requests.push({ path, gzip });
    res.writeHead(200, {
      "Content-Type":
        path === "checkpoint" ? "text/plain; charset=utf-8" : "application/octet-stream",
      ...(gzip ? { "Content-Encoding": "gzip" } : {}),
    });
    res.end(gzip ? gzipSync(body) : body);
  });
  const url = await listen(server);
  closers.push(
    () =>
      new Promise<void>((done) => {
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          done();
        });
      }),
  );

  const files = new Map<string, Uint8Array>();
  const leaves: Uint8Array[] = [];
  const leafHashes: Uint8Array[] = [];
  const write = (path: string, data: Uint8Array) => {
    files.set(path, data);
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
  };
  const read = (tile: HashTileId | EntryBundleId) => files.get(formatTilePath(tile))!;
  return {
    dir,
    url,
    requests,
    get size() {
      return leaves.length;
    },
    leafHashes,
    grow(entries) {
      const oldSize = leaves.length;
      const hashes = entries.map(hashLeaf);
      for (const t of appendHashTiles(oldSize, read, hashes)) write(formatTilePath(t.tile), t.data);
      for (const b of appendEntryBundles(oldSize, read, entries)) {
        write(formatTilePath(b.tile), b.data);
      }
      leaves.push(...entries);
      leafHashes.push(...hashes);
    },
    publish(note) {
      write("checkpoint", new TextEncoder().encode(note));
    },
    sign(skey, origin) {
      const cp: Checkpoint = {
        origin,
        size: leaves.length,
        rootHash: rootOf(leafHashes),
        extensions: [],
      };
      return signNote(formatCheckpoint(cp), [signerFromKey(skey)]);
    },
  };
}
