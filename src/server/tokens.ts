/**
 * @module
 * Bearer tokens with scopes. A token is `vellum_` + 32 random bytes (base64url); only its
 * SHA-256 is stored, so a leaked database does not leak tokens, and tokens are never logged.
 *
 *   key "h" sha256(token) → CBOR { id, name, scopes, created, revoked? }
 *   key "i" id            → sha256(token)       (revoke and list by id)
 *
 * Every token is held in memory too (there are few), so checking one costs a hash and a lookup.
 */
import { randomBytes } from "node:crypto";
import { Encoder } from "cbor-x";
import { sha256 } from "../core/crypto.js";
import { check, VellumError } from "../core/errors.js";
import type { KeyValueStore } from "../storage/types.js";

export const SCOPES = ["append", "read", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  /** Milliseconds since the epoch. */
  readonly created: number;
  readonly revoked?: number;
}

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const enc = new TextEncoder();
const PREFIX = "vellum_";
const MAX_TOKENS = 10_000;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

const hashKey = (hash: Uint8Array) => Uint8Array.from([0x68, ...hash]);
const idKey = (id: string) => Uint8Array.from([0x69, ...enc.encode(id)]);
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

export class TokenStore {
  readonly #kv: KeyValueStore;
  /** base64(sha256(token)) → info */
  readonly #byHash = new Map<string, TokenInfo>();

  private constructor(kv: KeyValueStore) {
    this.#kv = kv;
  }

  static async open(kv: KeyValueStore): Promise<TokenStore> {
    const store = new TokenStore(kv);
    const rows = await kv.range({ gte: Uint8Array.of(0x68), lt: Uint8Array.of(0x69) });
    for (const [key, value] of rows) {
      store.#byHash.set(b64(key.subarray(1)), cbor.decode(value) as TokenInfo);
    }
    return store;
  }

  get count(): number {
    return this.#byHash.size;
  }

  /** Whether some token that is not revoked has the admin scope. */
  get hasActiveAdmin(): boolean {
    for (const info of this.#byHash.values()) {
      if (info.revoked === undefined && info.scopes.includes("admin")) return true;
    }
    return false;
  }

  /** Creates a token; the secret is returned once and never stored. */
  async create(
    name: string,
    scopes: readonly Scope[],
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
    check(this.#byHash.size < MAX_TOKENS, "TOO_LARGE", `at most ${MAX_TOKENS} tokens`);
    const token = PREFIX + randomBytes(32).toString("base64url");
    const hash = sha256(enc.encode(token));
    const info: TokenInfo = {
      id: randomBytes(8).toString("hex"),
      name,
      scopes: [...new Set(scopes)],
      created: Date.now(),
    };
    await this.#kv.write([
      { type: "put", key: hashKey(hash), value: cbor.encode(info) },
      { type: "put", key: idKey(info.id), value: hash },
    ]);
    this.#byHash.set(b64(hash), info);
    return { token, info };
  }

  /** The token's info if it exists and is not revoked. */
  verify(token: string): TokenInfo | undefined {
    if (!token.startsWith(PREFIX) || token.length > 100) return undefined;
    const info = this.#byHash.get(b64(sha256(enc.encode(token))));
    return info === undefined || info.revoked !== undefined ? undefined : info;
  }

  list(): TokenInfo[] {
    return [...this.#byHash.values()].sort((a, b) => a.created - b.created);
  }

  async revoke(id: string): Promise<TokenInfo> {
    const hash = /^[0-9a-f]{16}$/.test(id) ? await this.#kv.get(idKey(id)) : undefined;
    const info = hash === undefined ? undefined : this.#byHash.get(b64(hash));
    if (hash === undefined || info === undefined) {
      throw new VellumError("NOT_FOUND", `no token with id ${JSON.stringify(id.slice(0, 40))}`);
    }
    if (info.revoked !== undefined) return info;
    const revoked = { ...info, revoked: Date.now() };
    await this.#kv.write([{ type: "put", key: hashKey(hash), value: cbor.encode(revoked) }]);
    this.#byHash.set(b64(hash), revoked);
    return revoked;
  }
}
