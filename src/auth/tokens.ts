/**
 * @module
 * Bearer tokens with scopes. A token is `vellum_` + 32 random bytes (base64url); only its
 * SHA-256 is stored, so a leaked database does not leak tokens, and tokens are never logged.
 * Where they are kept is token-records.ts (the embedded key layout, or another backend's).
 *
 * Every token is held in memory too (there are few), so checking one costs a hash and a lookup.
 * Names are unique among tokens that still work (not revoked, not expired): a second "ingest"
 * is refused with CONFLICT, so a list of tokens says unambiguously which one a name means;
 * revoking one frees its name. A token past its `expires` time is refused like a revoked one.
 * The last-used time is exact in memory but written at most once a minute per token (under its
 * own key, so it never races a revocation): checking a token never waits for a write, and a busy
 * token costs one small write a minute, not one per request.
 */
import { randomBytes } from "node:crypto";
import { sha256 } from "../core/crypto.js";
import { check, VellumError } from "../core/errors.js";
import { type Logger, silentLogger } from "../core/logger.js";
import type { KeyValueStore } from "../storage/types.js";
import { KvTokenRecords, type TokenRecords } from "./token-records.js";

export const SCOPES = ["append", "read", "admin", "audit"] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  /** Milliseconds since the epoch. */
  readonly created: number;
  /** Milliseconds since the epoch after which the token no longer works. */
  readonly expires?: number;
  readonly revoked?: number;
  /**
   * A read limited to these tenants (metadata.tenant_uid of OCSF events): JSON reads and
   * queries show only their events; raw entry bundles and time windows are refused.
   */
  readonly tenants?: readonly string[];
}

export interface TokenStoreOptions {
  /** The clock (ms since the epoch); tests pass their own. */
  readonly now?: () => number;
  /** Least time between two writes of one token's last-used time (default one minute). */
  readonly lastUsedWriteMs?: number;
  /** Where a failed last-used write is said (default: nowhere). */
  readonly logger?: Logger;
}

const enc = new TextEncoder();
const PREFIX = "vellum_";
const MAX_TOKENS = 10_000;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

export class TokenStore {
  readonly #records: TokenRecords;
  /** base64(sha256(token)) → info */
  readonly #byHash = new Map<string, TokenInfo>();
  /** id → last use (ms), exact. */
  readonly #lastUsed = new Map<string, number>();
  /** id → the last-used time last written (or being written). */
  readonly #lastWritten = new Map<string, number>();
  readonly #now: () => number;
  readonly #writeEveryMs: number;

  readonly #logger: Logger;

  private constructor(records: TokenRecords, options: TokenStoreOptions) {
    this.#records = records;
    this.#now = options.now ?? Date.now;
    this.#writeEveryMs = options.lastUsedWriteMs ?? 60_000;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Opens the tokens kept in `source`: a KeyValueStore namespace (the embedded layout) or records. */
  static async open(
    source: KeyValueStore | TokenRecords,
    options: TokenStoreOptions = {},
  ): Promise<TokenStore> {
    const records = "loadAll" in source ? source : new KvTokenRecords(source);
    const store = new TokenStore(records, options);
    const { tokens, lastUsed } = await records.loadAll();
    for (const { hash, info } of tokens) store.#byHash.set(b64(hash), info);
    for (const [id, at] of lastUsed) {
      store.#lastUsed.set(id, at);
      store.#lastWritten.set(id, at);
    }
    return store;
  }

  /** Whether the token still works: neither revoked nor expired. */
  #works(info: TokenInfo, now = this.#now()): boolean {
    return info.revoked === undefined && (info.expires === undefined || info.expires > now);
  }

  /** When the token was last accepted (ms since the epoch), if ever. */
  lastUsed(id: string): number | undefined {
    return this.#lastUsed.get(id);
  }

  get count(): number {
    return this.#byHash.size;
  }

  /** Whether some token that is not revoked has the admin scope. */
  get hasActiveAdmin(): boolean {
    for (const info of this.#byHash.values()) {
      if (this.#works(info) && info.scopes.includes("admin")) return true;
    }
    return false;
  }

  /**
   * Creates a token; the secret is returned once and never stored. `expires` (ms since the
   * epoch, in the future) ends it; without, it works until revoked. CONFLICT if a token that
   * still works has this name.
   */
  async create(
    name: string,
    scopes: readonly Scope[],
    options: { expires?: number; tenants?: readonly string[] } = {},
  ): Promise<{ token: string; info: TokenInfo }> {
    check(
      typeof name === "string" && name.length > 0 && name.length <= 100 && !CONTROL.test(name),
      "MALFORMED",
      "token name must be 1-100 printable characters",
    );
    check(
      Array.isArray(scopes) && scopes.length > 0 && scopes.every((s) => SCOPES.includes(s)),
      "MALFORMED",
      `scopes must be a non-empty list of ${SCOPES.join(", ")}`,
    );
    const { tenants } = options;
    check(
      tenants === undefined ||
        (Array.isArray(tenants) &&
          tenants.length > 0 &&
          tenants.length <= 100 &&
          tenants.every(
            (t) => typeof t === "string" && t.length > 0 && t.length <= 200 && !CONTROL.test(t),
          )),
      "MALFORMED",
      "tenants must be a list of 1-100 tenant ids of 1-200 printable characters",
    );
    const now = this.#now();
    const { expires } = options;
    check(
      expires === undefined || (Number.isSafeInteger(expires) && expires > now),
      "MALFORMED",
      "expires must be a time in the future (milliseconds since the epoch)",
    );
    for (const other of this.#byHash.values()) {
      if (other.name === name && this.#works(other, now)) {
        throw new VellumError(
          "CONFLICT",
          `a token named ${JSON.stringify(name)} exists (id ${other.id}); pick another name, or revoke that one first`,
        );
      }
    }
    check(this.#byHash.size < MAX_TOKENS, "TOO_LARGE", `at most ${MAX_TOKENS} tokens`);
    const token = PREFIX + randomBytes(32).toString("base64url");
    const hash = sha256(enc.encode(token));
    const info: TokenInfo = {
      id: randomBytes(8).toString("hex"),
      name,
      scopes: [...new Set(scopes)],
      created: now,
      ...(expires === undefined ? {} : { expires }),
      ...(tenants === undefined ? {} : { tenants: [...new Set(tenants)] }),
    };
    await this.#records.add({ hash, info });
    this.#byHash.set(b64(hash), info);
    return { token, info };
  }

  /** The token's info if it exists and still works (not revoked, not expired); notes the use. */
  verify(token: string): TokenInfo | undefined {
    if (!token.startsWith(PREFIX) || token.length > 100) return undefined;
    const info = this.#byHash.get(b64(sha256(enc.encode(token))));
    const now = this.#now();
    if (info === undefined || !this.#works(info, now)) return undefined;
    this.#used(info.id, now);
    return info;
  }

  /** Why `token` does not work, for the 401's detail (never says whether an unknown one exists). */
  refusal(token: string): string {
    const info = token.startsWith(PREFIX)
      ? this.#byHash.get(b64(sha256(enc.encode(token))))
      : undefined;
    if (info?.revoked === undefined && info?.expires !== undefined && info.expires <= this.#now()) {
      return `the bearer token expired at ${new Date(info.expires).toISOString()}`;
    }
    return "the bearer token is not valid (unknown, revoked or malformed)";
  }

  /**
   * Records a use: exactly in memory, and durably when the stored time is a minute old. The
   * write is not awaited (a request never waits for it); if it fails, the time is written with a
   * later use, and the failure is logged.
   */
  #used(id: string, now: number): void {
    this.#lastUsed.set(id, now);
    const written = this.#lastWritten.get(id);
    if (written !== undefined && now - written < this.#writeEveryMs) return;
    this.#lastWritten.set(id, now);
    this.#records.setLastUsed(id, now).catch((e) => {
      if (this.#lastWritten.get(id) === now) {
        if (written === undefined) this.#lastWritten.delete(id);
        else this.#lastWritten.set(id, written);
      }
      this.#logger.warn(
        { token: id },
        `could not store token ${id}'s last-used time: ${(e as Error).message}`,
      );
    });
  }

  list(): TokenInfo[] {
    return [...this.#byHash.values()].sort((a, b) => a.created - b.created);
  }

  async revoke(id: string): Promise<TokenInfo> {
    const hash = /^[0-9a-f]{16}$/.test(id) ? await this.#records.hashOf(id) : undefined;
    const info = hash === undefined ? undefined : this.#byHash.get(b64(hash));
    if (hash === undefined || info === undefined) {
      throw new VellumError("NOT_FOUND", `no token with id ${JSON.stringify(id.slice(0, 40))}`);
    }
    if (info.revoked !== undefined) return info;
    const revoked = { ...info, revoked: this.#now() };
    await this.#records.update({ hash, info: revoked });
    this.#byHash.set(b64(hash), revoked);
    return revoked;
  }
}
