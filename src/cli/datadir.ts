/**
 * @module
 * A log's data directory: created on first start, checked on every start.
 *
 *   DATA/log.key         the signing key (Go sumdb/note signer format; name = origin), mode 0600
 *   DATA/log.vkey        the verifier key, one line, what integrators and witnesses need
 *   DATA/checkpoint      the last published checkpoint, kept OUTSIDE the database so a database
 *                        restored from an older backup is caught at start (rollback guard;
 *                        written and read with the state mirror's copy by marker.ts)
 *   DATA/db/             LevelDB; one namespace per log hosted here
 *   DATA/entries/        LevelDB of the leaves of logs created since it exists (layout 3,
 *                        src/storage/kv-log-layout.ts), one namespace per log as in db/
 *
 * The key file is created with O_EXCL and mode 0600 and never logged. The directory is mode
 * 0700: one that already exists with access for others (made by hand, or by `mkdir` with a
 * umask of 022) is changed to 0700 at start, with a warning naming it and its old mode, and so
 * are secret files others can read (DATA/admin.token, see {@link restrictMode}).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { VellumError } from "../core/errors.js";
import {
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  parseSignerKey,
  SIG_TYPE_COSIGNATURE,
  SIG_TYPE_ED25519,
  signerFromSeed,
} from "../core/keys.js";
import { createSecretFile, writeFileDurably } from "../platform/durable-file.js";
import { databasePaths } from "./embedded-db.js";

export interface LogFiles {
  readonly dir: string;
  readonly origin: string;
  readonly seed: Uint8Array;
  readonly verifierKey: string;
  readonly dbPath: string;
  /** The entries database (leaves of layout-3 logs). */
  readonly entriesPath: string;
  readonly created: boolean;
}

/** The default origin: `<host name>/vellum`, reduced to what a key name may hold. */
export function defaultOrigin(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, "-") || "localhost";
  return `${host}/vellum`;
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Takes away every permission of group and others on `path` (a directory to 0700, a file to
 * 0600), saying so on stderr with the path and its old mode; does nothing if there were none.
 * A secret readable by others may already have been read: the warning says so, so that the
 * operator can decide to replace it.
 */
export function restrictMode(
  path: string,
  mode: 0o700 | 0o600,
  warn: (message: string) => void = (m) => console.error(`vellum: ${m}`),
): void {
  const old = statSync(path).mode & 0o777;
  if ((old & 0o077) === 0) return;
  chmodSync(path, mode);
  warn(
    `warning: ${path} had mode ${old.toString(8).padStart(4, "0")} (open to group or others); changed it to ${mode.toString(8).padStart(4, "0")}`,
  );
}

/** Refuses a name no key can have (checked before anything is created). Throws MALFORMED. */
export function checkKeyName(name: string, what: string): void {
  if (!isValidKeyName(name) || name === "cosignature/v1") {
    throw new VellumError("MALFORMED", `${what} "${name}" cannot name a key (no spaces, no "+")`);
  }
}

/** Refuses a data directory path that exists but is not a directory (before creating it). */
export function checkDataDirPath(dir: string, option: string): void {
  let stats: ReturnType<typeof statSync> | undefined;
  try {
    stats = statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // created on first start
    throw e;
  }
  if (!stats.isDirectory()) {
    throw new VellumError("MALFORMED", `${option} ${dir} exists and is not a directory`);
  }
}

export interface KeyFiles {
  readonly name: string;
  readonly seed: Uint8Array;
  readonly verifierKey: string;
  readonly created: boolean;
}

/**
 * Opens (or creates, with mode 0600 and O_EXCL) the signer key `<base>.key` in `dir` and keeps
 * `<base>.vkey` holding its verifier key on one line. `name` is used on creation and, when
 * given, must match an existing key (a key's name cannot change).
 */
export function openKey(
  dir: string,
  base: string,
  type: typeof SIG_TYPE_ED25519 | typeof SIG_TYPE_COSIGNATURE,
  options: {
    name?: string;
    defaultName: string;
    what: string;
    /** Where a mode change is said (default stderr; serve and witness pass their logger). */
    warn?: (message: string) => void;
  },
): KeyFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  restrictMode(dir, 0o700, options.warn); // mkdir's mode applies only to a new directory (and minus the umask)
  const keyPath = join(dir, `${base}.key`);
  let text = readIfExists(keyPath);
  let created = false;
  if (text === undefined) {
    checkKeyName(options.name ?? options.defaultName, options.what);
    const name = options.name ?? options.defaultName;
    text = `${formatSignerKey({ name, type, seed: randomBytes(32) })}\n`;
    createSecretFile(keyPath, text);
    created = true;
  } else {
    const mode = statSync(keyPath).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new VellumError(
        "STATE_MISMATCH",
        `${keyPath} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${keyPath}`,
      );
    }
  }
  const key = parseSignerKey(text.trim());
  if (key.type !== type) {
    throw new VellumError(
      "BAD_KEY",
      `${keyPath} holds a key of type ${key.type}, expected ${type}`,
    );
  }
  if (options.name !== undefined && options.name !== key.name) {
    throw new VellumError(
      "STATE_MISMATCH",
      `${dir} holds the ${options.what} "${key.name}", not "${options.name}" (it cannot change)`,
    );
  }
  const verifierKey =
    type === SIG_TYPE_COSIGNATURE
      ? formatVerifierKey({
          name: key.name,
          type,
          publicKey: signerFromSeed(key.name, key.seed).publicKey,
        })
      : signerFromSeed(key.name, key.seed).verifierKey;
  const vkeyPath = join(dir, `${base}.vkey`);
  if (readIfExists(vkeyPath)?.trim() !== verifierKey)
    writeFileDurably(vkeyPath, `${verifierKey}\n`);
  return { name: key.name, seed: key.seed, verifierKey, created };
}

/** Opens DATA, creating it (and a new key) on first use. */
export function openDataDir(
  dir: string,
  options: { origin?: string; warn?: (message: string) => void } = {},
): LogFiles {
  const key = openKey(dir, "log", SIG_TYPE_ED25519, {
    ...(options.origin === undefined ? {} : { name: options.origin }),
    ...(options.warn === undefined ? {} : { warn: options.warn }),
    defaultName: defaultOrigin(),
    what: "log",
  });
  return {
    dir,
    origin: key.name,
    seed: key.seed,
    verifierKey: key.verifierKey,
    ...databasePaths(dir),
    created: key.created,
  };
}
