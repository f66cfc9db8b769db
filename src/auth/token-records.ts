/**
 * @module
 * Where tokens are kept: the seam between the token rules (tokens.ts) and a backend. A record is
 * a token's info under the SHA-256 of its secret (the secret itself is never stored), an index
 * from id to that hash, and each token's last-used time under its own key (so writing it never
 * races a revocation). The embedded implementation keeps them in the `tokens` namespace of the
 * data directory's store (spec/storage.md, "Tokens"):
 *
 *   key "h" sha256(token) → CBOR { id, name, scopes, created, expires?, revoked? }
 *   key "i" id            → sha256(token)       (revoke and list by id)
 *   key "u" id            → CBOR last-used time (ms)
 */
import { Encoder } from "cbor-x";
import type { KeyValueStore } from "../storage/types.js";
import type { TokenInfo } from "./tokens.js";

export interface TokenRecord {
  readonly hash: Uint8Array;
  readonly info: TokenInfo;
}

export interface TokenRecords {
  /** Every stored token, and every stored last-used time by id. */
  loadAll(): Promise<{ tokens: TokenRecord[]; lastUsed: Map<string, number> }>;
  /** Stores a new token (its info and its id index) atomically; durable once it resolves. */
  add(record: TokenRecord): Promise<void>;
  /** Replaces a token's info (revocation); durable once it resolves. */
  update(record: TokenRecord): Promise<void>;
  /** The hash a token id maps to. */
  hashOf(id: string): Promise<Uint8Array | undefined>;
  /** Stores a token's last-used time. */
  setLastUsed(id: string, at: number): Promise<void>;
}

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const enc = new TextEncoder();
const TAG = { hash: 0x68, id: 0x69, used: 0x75 };
const tagged = (tag: number, body: Uint8Array) => Uint8Array.from([tag, ...body]);

export class KvTokenRecords implements TokenRecords {
  readonly #kv: KeyValueStore;

  constructor(kv: KeyValueStore) {
    this.#kv = kv;
  }

  async loadAll(): Promise<{ tokens: TokenRecord[]; lastUsed: Map<string, number> }> {
    const [rows, used] = await Promise.all([
      this.#kv.range({ gte: Uint8Array.of(TAG.hash), lt: Uint8Array.of(TAG.hash + 1) }),
      this.#kv.range({ gte: Uint8Array.of(TAG.used), lt: Uint8Array.of(TAG.used + 1) }),
    ]);
    return {
      tokens: rows.map(([key, value]) => ({
        hash: key.subarray(1),
        info: cbor.decode(value) as TokenInfo,
      })),
      lastUsed: new Map(
        used.map(([key, value]) => [
          new TextDecoder().decode(key.subarray(1)),
          cbor.decode(value) as number,
        ]),
      ),
    };
  }

  add({ hash, info }: TokenRecord): Promise<void> {
    return this.#kv.write([
      { type: "put", key: tagged(TAG.hash, hash), value: cbor.encode(info) },
      { type: "put", key: tagged(TAG.id, enc.encode(info.id)), value: hash },
    ]);
  }

  update({ hash, info }: TokenRecord): Promise<void> {
    return this.#kv.write([{ type: "put", key: tagged(TAG.hash, hash), value: cbor.encode(info) }]);
  }

  hashOf(id: string): Promise<Uint8Array | undefined> {
    return this.#kv.get(tagged(TAG.id, enc.encode(id)));
  }

  setLastUsed(id: string, at: number): Promise<void> {
    return this.#kv.write([
      { type: "put", key: tagged(TAG.used, enc.encode(id)), value: cbor.encode(at) },
    ]);
  }
}
