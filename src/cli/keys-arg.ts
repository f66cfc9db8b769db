/**
 * @module
 * Verifier keys on the command line. Every option that takes one (`verify --key`, `inspect
 * --key`, `monitor --key`, `witness --trust`) accepts the key's text or the path of a file that
 * holds it, alike: `--key vellum-data/log.vkey` and `--key "$(cat vellum-data/log.vkey)"` mean
 * the same. The value is read as a key first and as a file only when it is not one (a key has
 * two `+` and a checked key id, so no sensible path parses as one); when neither works the error
 * names both attempts. A file holds one key per line (`#` comments and blank lines skipped);
 * options that take one key refuse a file with several rather than pick one.
 */
import { readFileSync } from "node:fs";
import { check, VellumError } from "../core/errors.js";
import { parseVerifierKey, SIG_TYPE_COSIGNATURE, SIG_TYPE_ED25519 } from "../core/keys.js";

const TYPE_NAMES: Record<number, string> = {
  [SIG_TYPE_ED25519]: "a log key (type 0x01)",
  [SIG_TYPE_COSIGNATURE]: "a witness key (type 0x04)",
};

/** The keys a value stands for: itself if it parses as one, else the keys its file holds. */
function resolveKeys(value: string, option: string): string[] {
  const text = value.trim();
  let notKey: string;
  try {
    parseVerifierKey(text);
    return [text];
  } catch (e) {
    notKey = (e as Error).message;
  }
  let contents: string;
  try {
    contents = readFileSync(value, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new VellumError(
      "BAD_KEY",
      `${option} "${value}" is neither a verifier key (${notKey}) nor a readable file (${why})`,
    );
  }
  const keys: string[] = [];
  for (const [i, raw] of contents.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      parseVerifierKey(line);
    } catch (e) {
      throw new VellumError(
        "BAD_KEY",
        `${option} ${value}: line ${i + 1} is not a verifier key (${(e as Error).message})`,
      );
    }
    keys.push(line);
  }
  check(keys.length > 0, "BAD_KEY", `${option} ${value}: the file holds no verifier key`);
  return keys;
}

function checkType(key: string, type: number | undefined, option: string): void {
  if (type === undefined) return;
  const parsed = parseVerifierKey(key);
  check(
    parsed.type === type,
    "BAD_KEY",
    `${option}: ${parsed.name} is ${TYPE_NAMES[parsed.type] ?? `of type ${parsed.type}`}; ` +
      `this option wants ${TYPE_NAMES[type] ?? `type ${type}`}`,
  );
}

/**
 * One verifier key from `value`: the key's text, or a file holding exactly one key (e.g.
 * DATA/log.vkey). With `type`, the key must be of that signature type. Throws BAD_KEY.
 */
export function readKeyArg(value: string, option = "--key", type?: number): string {
  const keys = resolveKeys(value, option);
  check(
    keys.length === 1,
    "BAD_KEY",
    `${option} ${value}: the file holds ${keys.length} keys; this option takes one`,
  );
  checkType(keys[0]!, type, option);
  return keys[0]!;
}

/** Verifier keys from `value`: one key's text, or a file with one key per line. Throws BAD_KEY. */
export function readKeysArg(value: string, option: string, type?: number): string[] {
  const keys = resolveKeys(value, option);
  for (const key of keys) checkType(key, type, option);
  return keys;
}
