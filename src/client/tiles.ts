/**
 * @module
 * A reader for any C2SP tlog-tiles log (https://c2sp.org/tlog-tiles) over HTTP: the checkpoint,
 * hash tiles, entry bundles, any Merkle node of a tree of a given size, and inclusion and
 * consistency proofs built client-side from tiles (RFC 9162 §2.1.3-2.1.4) with the core proof
 * plans. Pure: no node:* imports; the only I/O is `fetch`, which callers may inject.
 *
 * What it proves: nothing by itself. It fetches and decodes; every byte it returns is untrusted
 * until checked against a signed checkpoint (see ./monitor.ts, or verifyInclusion /
 * verifyConsistency in the core). It does check shapes: a hash tile of the wrong length or an
 * entry bundle of the wrong entry count is MALFORMED.
 *
 * Tile choice. Node (h, i) of a tree of `size` lives in the level-floor(h/8) tile that
 * `tileForNode` names, with the width that tile has in that tree. A partial tile is a prefix of
 * every wider version of the same tile, so the reader serves a request from any cached tile at
 * least as wide, prefers the full tile when the caller told it (`observeSize`) that the log has
 * grown past it (immutable, cacheable, and logs may drop partial tiles once the full one exists),
 * and otherwise falls back between the partial tile of the requested size and the full tile on
 * 404.
 *
 * Errors (VellumError codes): NOT_FOUND for a 404; UNAUTHENTICATED / FORBIDDEN for 401 / 403 (a
 * token is missing or lacks the "read" scope); UNAVAILABLE for 5xx and 429 and NETWORK for
 * timeouts, network errors and other statuses, once the retries (exponential backoff, honouring
 * Retry-After) are spent; MALFORMED (a TileDataError, with the bytes) for bad data.
 * Sizes and indices are safe integers and no bitwise operator touches them.
 */

import { backoffDelay, retryAfterMs } from "../core/backoff.js";
import { check, type ErrorCode, VellumError } from "../core/errors.js";
import { LruCache } from "../core/lru.js";
import { checkSize } from "../core/merkle.js";
import {
  assembleProof,
  consistencyProofPlan,
  inclusionProofPlan,
  planNodes,
} from "../core/proof.js";
import { HASH_SIZE } from "../core/rfc6962.js";
import {
  decodeEntryBundle,
  type EntryBundleId,
  formatTilePath,
  type HashTileId,
  MAX_TILE_LEVEL,
  perfectSubtreeRoot,
  TILE_WIDTH,
  type TileId,
  tileForNode,
} from "../core/tiles.js";

/** The subset of `fetch` the reader uses; `app.request` of a hono app fits too. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface TileReaderOptions {
  /** The log's prefix URL: `<url>/checkpoint` and `<url>/tile/...` are its resources. */
  readonly url: string;
  /** Sent with every request, e.g. `{ Authorization: "Bearer ..." }`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Defaults to the global `fetch` (which decodes gzip Content-Encoding transparently). */
  readonly fetch?: FetchLike;
  /** Per-attempt timeout in milliseconds (default 30,000). */
  readonly timeoutMs?: number;
  /** Attempts after the first for 5xx, 429, timeouts and network errors (default 4). */
  readonly retries?: number;
  /** First backoff in milliseconds, doubled per retry up to 10 s (default 250). */
  readonly backoffMs?: number;
  /** Hash tiles kept in the LRU cache (default 1,024, about 8 MiB). */
  readonly cacheTiles?: number;
  /** Aborts every request (e.g. on SIGINT); an aborted request is NETWORK. */
  readonly signal?: AbortSignal;
  /** For tests: how to wait between retries. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A resource as served: which tile was fetched (maybe wider than asked) and its bytes. */
export interface Fetched<T extends TileId = TileId> {
  readonly tile: T;
  readonly path: string;
  readonly data: Uint8Array;
}

/** A hash tile as read for a tree: `hashes` holds exactly the width the tree has. */
export interface HashTileRead extends Fetched<HashTileId> {
  readonly hashes: readonly Uint8Array[];
}

/** An entry bundle as read for a tree: `entries` holds exactly the width the tree has. */
export interface EntryBundleRead extends Fetched<EntryBundleId> {
  readonly entries: readonly Uint8Array[];
}

export interface TileReaderStats {
  /** HTTP requests sent, retries included. */
  requests: number;
  /** Retries after 5xx, 429, timeouts and network errors. */
  retries: number;
  /** Hash tile reads answered from the cache. */
  cacheHits: number;
  /** Bytes of response bodies received (after Content-Encoding decoding). */
  bytes: number;
}

/** MALFORMED data at a tile path, with the bytes as served (for evidence). */
export class TileDataError extends VellumError {
  readonly resource: Fetched;
  constructor(url: string, resource: Fetched, why: string, cause?: unknown) {
    super("MALFORMED", `${url}${resource.path}: ${why}`, cause === undefined ? {} : { cause });
    this.resource = resource;
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 4;
const DEFAULT_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;
const DEFAULT_CACHE_TILES = 1024;

/** Width of tile `index` of `level` in a tree of `size` (0 when the tree has no such tile). */
export function tileWidthAt(level: number, index: number, size: number): number {
  const nodes = Math.floor(size / TILE_WIDTH ** level); // division by a power of two is exact
  return Math.max(0, Math.min(TILE_WIDTH, nodes - index * TILE_WIDTH));
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Reads one tlog-tiles log. Safe to share between concurrent callers. */
export class TileReader {
  readonly url: string;
  readonly stats: TileReaderStats = { requests: 0, retries: 0, cacheHits: 0, bytes: 0 };
  readonly #headers: Readonly<Record<string, string>>;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #sleep: (ms: number) => Promise<void>;
  /** "level/index" → the widest version of that hash tile seen (bytes, 32 per hash). */
  readonly #cache: LruCache<string, Fetched<HashTileId>>;
  /** Requests in flight by path, so concurrent readers of one tile share one fetch. */
  readonly #inflight = new Map<string, Promise<Uint8Array>>();
  #latestSize = 0;

  constructor(options: TileReaderOptions) {
    check(typeof options.url === "string" && options.url !== "", "MALFORMED", "url is required");
    let base: URL;
    try {
      base = new URL(options.url.endsWith("/") ? options.url : `${options.url}/`);
    } catch {
      throw new VellumError("MALFORMED", `url ${JSON.stringify(options.url)} is not a URL`);
    }
    check(
      base.protocol === "http:" || base.protocol === "https:",
      "MALFORMED",
      `url must be http(s), got ${base.protocol}`,
    );
    this.url = base.href;
    this.#headers = { ...options.headers };
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#retries = options.retries ?? DEFAULT_RETRIES;
    this.#backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.#signal = options.signal;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#cache = new LruCache(options.cacheTiles ?? DEFAULT_CACHE_TILES);
    check(this.#timeoutMs > 0, "OUT_OF_RANGE", "timeoutMs must be positive");
    check(
      Number.isInteger(this.#retries) && this.#retries >= 0,
      "OUT_OF_RANGE",
      "retries must be an integer >= 0",
    );
  }

  /**
   * Tells the reader the log has (at least) this size, e.g. from a verified checkpoint, so that
   * reads for smaller trees prefer the tiles that are full in it. Never decreases.
   */
  observeSize(size: number): void {
    checkSize(size);
    if (size > this.#latestSize) this.#latestSize = size;
  }

  /** The largest size passed to `observeSize`. */
  get latestSize(): number {
    return this.#latestSize;
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  /** GET `path` (relative to the log's URL) with timeout and retries; the body's bytes. */
  async get(path: string): Promise<Uint8Array> {
    const shared = this.#inflight.get(path);
    if (shared !== undefined) return shared;
    const p = this.#get(path).finally(() => this.#inflight.delete(path));
    this.#inflight.set(path, p);
    return p;
  }

  async #get(path: string): Promise<Uint8Array> {
    const url = new URL(path, this.url).href;
    let lastError = "";
    let lastCode: ErrorCode = "NETWORK";
    for (let attempt = 0; ; attempt++) {
      if (this.#signal?.aborted) throw new VellumError("NETWORK", `GET ${url}: aborted`);
      let wait = backoffDelay(attempt, this.#backoffMs, MAX_BACKOFF_MS);
      this.stats.requests++;
      const timeout = AbortSignal.timeout(this.#timeoutMs);
      const signal =
        this.#signal === undefined ? timeout : AbortSignal.any([timeout, this.#signal]);
      try {
        const res = await this.#fetch(url, { headers: this.#headers, signal, redirect: "follow" });
        if (res.ok) {
          const body = new Uint8Array(await res.arrayBuffer());
          this.stats.bytes += body.length;
          return body;
        }
        res.body?.cancel().catch(() => {}); // not awaited: a tee'd body's cancel may never settle
        const status = res.status;
        if (status === 404) throw new VellumError("NOT_FOUND", `GET ${url}: 404 Not Found`);
        if (status === 401 || status === 403) {
          throw new VellumError(
            status === 401 ? "UNAUTHENTICATED" : "FORBIDDEN",
            `GET ${url}: ${status}: the log wants a bearer token with the "read" scope (--token or VELLUM_TOKEN)`,
          );
        }
        if (status !== 429 && status < 500) {
          throw new VellumError("NETWORK", `GET ${url}: unexpected status ${status}`);
        }
        lastCode = "UNAVAILABLE";
        lastError = `status ${status}`;
        wait = retryAfterMs(res.headers.get("Retry-After"), MAX_BACKOFF_MS) ?? wait;
      } catch (e) {
        if (e instanceof VellumError) throw e;
        if (this.#signal?.aborted) throw new VellumError("NETWORK", `GET ${url}: aborted`);
        const name = (e as Error).name;
        lastCode = "NETWORK";
        lastError =
          name === "TimeoutError" || name === "AbortError"
            ? `timed out after ${this.#timeoutMs} ms`
            : `network error: ${(e as Error).message}`;
      }
      if (attempt >= this.#retries) {
        throw new VellumError(
          lastCode,
          `GET ${url}: ${lastError} (gave up after ${attempt + 1} attempts)`,
        );
      }
      this.stats.retries++;
      await this.#sleep(wait);
    }
  }

  /** The current checkpoint note, unverified (verify it with openCheckpoint and the log key). */
  async checkpoint(): Promise<string> {
    const bytes = await this.get("checkpoint");
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new VellumError("MALFORMED", `${this.url}checkpoint is not UTF-8`);
    }
  }

  /** The bytes at a tile path exactly (no fallback, no cache). */
  async fetchTile<T extends TileId>(tile: T): Promise<Fetched<T>> {
    const path = formatTilePath(tile);
    return { tile, path, data: await this.get(path) };
  }

  /**
   * Widths to try for a tile that has `width` entries in the tree being read: the full tile
   * first when the log is known to have completed it, else the asked width then the full one.
   */
  #widths(level: number, index: number, width: number): number[] {
    if (width === TILE_WIDTH) return [TILE_WIDTH];
    const latest = tileWidthAt(level, index, this.#latestSize);
    if (latest === TILE_WIDTH) return [TILE_WIDTH, width];
    if (latest > width) return [latest, width, TILE_WIDTH];
    return [width, TILE_WIDTH];
  }

  /** Fetches the first of `widths` that exists; a 404 moves on to the next. */
  async #fetchAny<T extends TileId>(
    make: (width: number) => T,
    widths: readonly number[],
  ): Promise<Fetched<T>> {
    let notFound: VellumError | undefined;
    for (const w of widths) {
      try {
        return await this.fetchTile(make(w));
      } catch (e) {
        if (!(e instanceof VellumError && e.code === "NOT_FOUND")) throw e;
        notFound ??= e;
      }
    }
    throw notFound!;
  }

  // -------------------------------------------------------------------------------------------
  // Hash tiles, nodes, proofs

  /**
   * Hash tile `index` of `level` as it is in the tree of `size`: exactly the hashes that tree
   * has in it (a prefix of a wider tile when one is cached or only a wider one is served).
   * `cache: false` skips storing it (for bulk reads that will not come back).
   */
  async hashTile(
    level: number,
    index: number,
    size: number,
    options: { cache?: boolean } = {},
  ): Promise<HashTileRead> {
    check(
      Number.isInteger(level) && level >= 0 && level <= MAX_TILE_LEVEL,
      "OUT_OF_RANGE",
      `level must be 0..${MAX_TILE_LEVEL}, got ${level}`,
    );
    checkSize(index, "tile index");
    checkSize(size);
    const width = tileWidthAt(level, index, size);
    check(width > 0, "OUT_OF_RANGE", `a tree of size ${size} has no tile ${level}/${index}`);
    const key = `${level}/${index}`;
    let got = this.#cache.get(key);
    if (got !== undefined && got.tile.width >= width) {
      this.stats.cacheHits++;
    } else {
      got = await this.#fetchAny(
        (w): HashTileId => ({ level, index, width: w }),
        this.#widths(level, index, width),
      );
      if (got.data.length !== got.tile.width * HASH_SIZE) {
        const why = `${got.data.length} bytes, expected ${got.tile.width * HASH_SIZE}`;
        throw new TileDataError(this.url, got, why);
      }
      if (options.cache !== false) {
        const cached = this.#cache.get(key);
        if (cached === undefined || cached.tile.width < got.tile.width) this.#cache.set(key, got);
      }
    }
    const hashes: Uint8Array[] = [];
    for (let i = 0; i < width; i++)
      hashes.push(got.data.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
    return { ...got, hashes };
  }

  /**
   * Entry bundle `index` as it is in the tree of `size`: exactly that tree's entries (a prefix
   * of a wider bundle when only that is served). Not cached.
   */
  async entryBundle(index: number, size: number): Promise<EntryBundleRead> {
    checkSize(index, "bundle index");
    checkSize(size);
    const width = tileWidthAt(0, index, size);
    check(width > 0, "OUT_OF_RANGE", `a tree of size ${size} has no entry bundle ${index}`);
    const got = await this.#fetchAny(
      (w): EntryBundleId => ({ level: "entries", index, width: w }),
      this.#widths(0, index, width),
    );
    let entries: Uint8Array[];
    try {
      entries = decodeEntryBundle(got.data, got.tile.width);
    } catch (e) {
      throw new TileDataError(this.url, got, (e as Error).message, e);
    }
    return { ...got, entries: entries.length === width ? entries : entries.slice(0, width) };
  }

  /**
   * The hash of node (`level`, `index`) of the tree of `size` (the node must be complete in that
   * tree): read from its tile, or the root of the 2^(level mod 8) tile hashes below it.
   */
  async nodeHash(level: number, index: number, size: number): Promise<Uint8Array> {
    const where = tileForNode(level, index, size);
    const tile = await this.hashTile(where.tile.level, where.tile.index, size);
    const hashes = tile.hashes.slice(where.offset, where.offset + where.count);
    return where.count === 1 ? hashes[0]!.slice() : perfectSubtreeRoot(hashes);
  }

  /** Hashes of several nodes of the tree of `size`, in order (tiles are fetched once each). */
  nodeHashes(
    nodes: readonly { level: number; index: number }[],
    size: number,
  ): Promise<Uint8Array[]> {
    return Promise.all(nodes.map((n) => this.nodeHash(n.level, n.index, size)));
  }

  /** The RFC 9162 inclusion proof of leaf `index` in the tree of `size`, from tiles. */
  async inclusionProof(index: number, size: number): Promise<Uint8Array[]> {
    const plan = inclusionProofPlan(index, size);
    return assembleProof(plan, await this.nodeHashes(planNodes(plan), size));
  }

  /** The RFC 9162 consistency proof from `size1` to `size2`, from the tiles of `size2`. */
  async consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    const plan = consistencyProofPlan(size1, size2);
    return assembleProof(plan, await this.nodeHashes(planNodes(plan), size2));
  }
}
