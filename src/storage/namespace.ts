/**
 * @module
 * How namespaces share one ordered key space (spec/storage.md, "Drivers"). Every driver stores a
 * namespace's key `k` under `!<name>!` + `k`, the bytes `abstract-level`'s `sublevel(name)` uses
 * with its default separator, so a LevelDB directory can be inspected with stock tooling.
 *
 * Invariant: no namespace's prefix is a prefix of another's. Names are non-empty ASCII in
 * 0x23..0x7e (printable, no space, no `!`, no `"`), so the closing `!` can never fall inside
 * another name: "!a!" and "!ab!" differ at byte 2. Two prefixes therefore differ at a position
 * inside both, which puts every key of one namespace entirely before or entirely after every key
 * of the other, whatever the keys contain. A range [P+gte, P+lt) sees exactly that namespace.
 */
import { VellumError } from "../core/errors.js";

/** Longest accepted namespace name, in bytes (keeps every key's prefix small). */
export const MAX_NAMESPACE_NAME = 200;

const SEPARATOR = 0x21; // "!"

/** The key prefix of namespace `name`; throws MALFORMED for a name outside the rules above. */
export function namespacePrefix(name: string): Uint8Array {
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAMESPACE_NAME) {
    throw new VellumError(
      "MALFORMED",
      `namespace name must be 1..${MAX_NAMESPACE_NAME} characters, got ${JSON.stringify(name)}`,
    );
  }
  const prefix = new Uint8Array(name.length + 2);
  prefix[0] = SEPARATOR;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x23 || c > 0x7e) {
      throw new VellumError(
        "MALFORMED",
        `namespace name ${JSON.stringify(name)}: character ${i} must be printable ASCII other than space, '!' and '"'`,
      );
    }
    prefix[i + 1] = c;
  }
  prefix[name.length + 1] = SEPARATOR;
  return prefix;
}

/** `prefix` followed by `key`, in a new buffer. */
export function prefixKey(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix, 0);
  out.set(key, prefix.length);
  return out;
}

/** Bytewise unsigned comparison; a proper prefix sorts first. Returns <0, 0 or >0. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
