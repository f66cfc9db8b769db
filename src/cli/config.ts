/**
 * @module
 * Settings of the long-running commands (`serve`, `witness`), each from one table: a row names
 * an option once, and its flag (`--witness-policy`), environment variable
 * (`VELLUM_WITNESS_POLICY`, or `VELLUM_WITNESS_…` for the witness), configuration-file key
 * (`witness-policy:`), default, help text and check all come from that row, so they cannot drift
 * apart.
 *
 * Precedence, for each setting on its own: flag > environment > configuration file > default.
 * The configuration file (`--config FILE`, or the `…CONFIG` variable) is a YAML mapping of those
 * keys; an unknown key, a value of the wrong type or out of range is refused with the file and
 * the key named, before anything is created. Relative paths in the file are relative to the
 * file's directory (so a file and what it names move together); on the command line and in the
 * environment, to the working directory. An empty environment variable counts as unset.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Command, Option } from "commander";
import { isMap, isScalar, parseDocument, Document as YamlDocument } from "yaml";
import { parseVerifierKey } from "../core/keys.js";
import { usageError } from "./exit-codes.js";

/** What a setting holds; decides how its text and YAML values are read and checked. */
export type SettingKind =
  | "string"
  /** A file or directory: resolved against the working directory, or the config file's. */
  | "path"
  | "int"
  | "bool"
  /** Verifier keys or files of them (repeatable flag; a YAML list; comma-separated env). */
  | "keys";

export type SettingValue = string | number | boolean | readonly string[];

export interface Setting {
  /** The long flag without `--`, and the configuration-file key. */
  readonly name: string;
  readonly kind: SettingKind;
  /** The flag's argument as help shows it (`<dir>`); none for "bool". */
  readonly arg?: string;
  readonly help: string;
  readonly default?: SettingValue;
  /** Said in help when the default is not a fixed value (`<hostname>/vellum`). */
  readonly defaultHelp?: string;
  /**
   * Its environment variable when not the prefix and the name (`--bucket` reads
   * VELLUM_BUCKET_URL: VELLUM_BUCKET is, by AWS tools' habit, a bucket's bare name).
   */
  readonly env?: string;
  /** For "int": the allowed range, inclusive. */
  readonly min?: number;
  readonly max?: number;
}

/** One command's settings: its table and where its environment variables start. */
export interface SettingsTable {
  readonly command: string;
  /** `VELLUM_` for serve, `VELLUM_WITNESS_` for the witness. */
  readonly envPrefix: string;
  readonly settings: readonly Setting[];
}

export type Source = "flag" | "environment" | "file" | "default";

export interface Resolved {
  /** Effective values by setting name; a setting without a value and no default is absent. */
  readonly values: ReadonlyMap<string, SettingValue>;
  /** Where each value came from (for --print-config). */
  readonly sources: ReadonlyMap<string, string>;
  /** The configuration file read, absolute; undefined without one. */
  readonly configFile: string | undefined;
}

export const envName = (table: SettingsTable, name: string) =>
  table.settings.find((s) => s.name === name)?.env ??
  `${table.envPrefix}${name.toUpperCase().replace(/-/g, "_")}`;

const configEnv = (table: SettingsTable) => `${table.envPrefix}CONFIG`;

/** Commander's property name for a long flag (`witness-policy` -> `witnessPolicy`). */
const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function helpLine(table: SettingsTable, s: Setting): string {
  const notes = [`env ${envName(table, s.name)}${s.kind === "bool" ? "=1" : ""}`];
  if (s.kind === "bool") notes.push(`--no-${s.name} to turn off`);
  if (s.defaultHelp !== undefined) notes.push(`default ${s.defaultHelp}`);
  else if (s.default !== undefined && s.kind !== "bool") notes.push(`default ${s.default}`);
  if (s.kind === "keys") notes.push("repeatable");
  return `${s.help} (${notes.join("; ")})`;
}

/**
 * Adds the table's flags to `command`, plus `--config FILE` and `--print-config`. No flag gets
 * a commander default: a flag that was not given is undefined, so the environment, the file and
 * the default can be consulted in that order ({@link resolveSettings}).
 */
export function addSettings(command: Command, table: SettingsTable): Command {
  for (const s of table.settings) {
    if (s.kind === "bool") {
      command.option(`--${s.name}`, helpLine(table, s));
      // To turn off, on the command line, what the file or the environment turned on.
      command.addOption(new Option(`--no-${s.name}`).hideHelp());
    } else if (s.kind === "keys") {
      command.option(`--${s.name} ${s.arg ?? "<value>"}`, helpLine(table, s), (v: string, all) => [
        ...((all as string[] | undefined) ?? []),
        v,
      ]);
    } else {
      command.option(`--${s.name} ${s.arg ?? "<value>"}`, helpLine(table, s));
    }
  }
  command.option(
    "--config <file>",
    `YAML configuration file; keys are the long flags' names (env ${configEnv(table)})`,
  );
  command.option("--print-config", "print the effective configuration as YAML and exit");
  command.addHelpText(
    "after",
    `\nConfiguration file (--config FILE): YAML, one key per long option, named as the option\n` +
      `(e.g. "port: 6962", "${table.settings.at(-1)!.name}: ${exampleValue(table.settings.at(-1)!)}"). Each setting is taken from its flag, else\n` +
      `its environment variable, else the file, else its default. Relative paths in the file\n` +
      `are relative to the file's directory. --print-config shows the result.\n`,
  );
  return command;
}

function exampleValue(s: Setting): string {
  return s.kind === "bool" ? "true" : s.kind === "int" ? String(s.min ?? 1) : "…";
}

/** Reads a value given as text (a flag or an environment variable) for `s`. */
function fromText(s: Setting, text: string, where: string): SettingValue {
  switch (s.kind) {
    case "string":
      return text;
    case "path":
      return resolve(text);
    case "int":
      return checkInt(s, Number(text.trim() === "" ? Number.NaN : text), text, where);
    case "bool":
      if (/^(1|true|yes|on)$/i.test(text)) return true;
      if (/^(0|false|no|off)$/i.test(text)) return false;
      throw usageError(`${where} must be 1 or 0 (true or false), got "${text}"`);
    case "keys":
      return text
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "");
  }
}

function checkInt(s: Setting, n: number, shown: unknown, where: string): number {
  const min = s.min ?? Number.MIN_SAFE_INTEGER;
  const max = s.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw usageError(
      `${where} must be an integer from ${min} to ${max}, got ${JSON.stringify(shown)}`,
    );
  }
  return n;
}

/** A key's text stays as it is; anything else is a path, relative to the config file. */
function keyOrPath(value: string, base: string): string {
  try {
    parseVerifierKey(value.trim());
    return value;
  } catch {
    return resolve(base, value);
  }
}

/** Reads a YAML value from the configuration file for `s`; the type must match. */
function fromYaml(s: Setting, value: unknown, where: string, base: string): SettingValue {
  const wrong = (want: string): never => {
    throw usageError(`${where} must be ${want}, got ${JSON.stringify(value)}`);
  };
  switch (s.kind) {
    case "string":
      return typeof value === "string" ? value : wrong("a string (quote it)");
    case "path":
      return typeof value === "string" && value !== ""
        ? resolve(base, value)
        : wrong("a path (a string)");
    case "int":
      return typeof value === "number" ? checkInt(s, value, value, where) : wrong("an integer");
    case "bool":
      return typeof value === "boolean" ? value : wrong("true or false");
    case "keys": {
      const list = typeof value === "string" ? [value] : value;
      if (!Array.isArray(list) || !list.every((v) => typeof v === "string" && v !== "")) {
        return wrong("a verifier key or file, or a list of them");
      }
      return list.map((v: string) => keyOrPath(v, base));
    }
  }
}

/** A file of `log <vkey>` lines or bare keys: what `witness --config` took before. */
function looksLikeTrustList(text: string): boolean {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  return (
    lines.length > 0 &&
    lines.every((l) => {
      const fields = l.split(/\s+/);
      const key = fields[0] === "log" ? fields[1] : fields.length === 1 ? fields[0] : undefined;
      try {
        parseVerifierKey(key ?? "");
        return true;
      } catch {
        return false;
      }
    })
  );
}

/** The settings a configuration file holds, checked against the table. */
function readConfigFile(
  table: SettingsTable,
  file: string,
  where: string,
): Map<string, SettingValue> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw usageError(`${where} ${file} cannot be read (${why})`);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw usageError(`${file}: not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
  }
  const values = new Map<string, SettingValue>();
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    return values; // an empty file (or only comments): nothing set
  }
  if (!isMap(doc.contents)) {
    if (table.command === "witness" && looksLikeTrustList(text)) {
      throw usageError(
        where === "--config"
          ? `${file} is a list of trusted logs (what witness --config took before); pass it as --trust-file ${file} (reloaded on change as before): --config now takes a YAML configuration file`
          : `${where}=${file} is a list of trusted logs (what ${where} named before); set ${envName(table, "trust-file")} instead (reloaded on change as before): ${where} now names a YAML configuration file`,
      );
    }
    throw usageError(
      `${file}: a configuration file is a YAML mapping of settings ("port: 6962"), not ${isScalar(doc.contents) ? "a single value" : "a list"}`,
    );
  }
  const base = dirname(file);
  const byName = new Map(table.settings.map((s) => [s.name, s]));
  for (const [key, value] of Object.entries(doc.toJS() as Record<string, unknown>)) {
    const s = byName.get(key);
    if (s === undefined) {
      throw usageError(
        `${file}: unknown key "${key}"; vellum ${table.command} takes: ${[...byName.keys()].join(", ")}`,
      );
    }
    if (value === null) continue; // `key:` with nothing after it: left unset
    values.set(key, fromYaml(s, value, `${file}: ${key}`, base));
  }
  return values;
}

/**
 * The effective settings: for each row, the flag if given, else the environment variable, else
 * the configuration file's key, else the default. Throws a usage error (exit 2) naming the flag,
 * variable or file and key of any value that does not fit.
 */
export function resolveSettings(
  table: SettingsTable,
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Resolved {
  const configFlag = flags.config as string | undefined;
  const configVar = env[configEnv(table)];
  const configGiven =
    configFlag !== undefined ? configFlag : configVar === "" ? undefined : configVar;
  const configFile = configGiven === undefined ? undefined : resolve(configGiven);
  const file =
    configFile === undefined
      ? new Map<string, SettingValue>()
      : readConfigFile(table, configFile, configFlag !== undefined ? "--config" : configEnv(table));
  const values = new Map<string, SettingValue>();
  const sources = new Map<string, string>();
  for (const s of table.settings) {
    const flag = flags[camel(s.name)];
    const variable = envName(table, s.name);
    const text = env[variable];
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
      const value =
        s.kind === "bool"
          ? (flag as boolean)
          : s.kind === "keys"
            ? (flag as string[])
            : fromText(s, flag as string, `--${s.name}`);
      values.set(s.name, value);
      sources.set(s.name, value === false ? `--no-${s.name}` : `--${s.name}`);
    } else if (text !== undefined && text !== "") {
      values.set(s.name, fromText(s, text, variable));
      sources.set(s.name, variable);
    } else if (file.has(s.name)) {
      values.set(s.name, file.get(s.name)!);
      sources.set(s.name, configFile!);
    } else if (s.default !== undefined) {
      values.set(s.name, s.kind === "path" ? resolve(s.default as string) : s.default);
      sources.set(s.name, "default");
    }
  }
  return { values, sources, configFile };
}

/**
 * The effective configuration as a YAML configuration file (it can be given back to
 * `--config`), each value with a comment saying where it came from. Settings without a value are
 * listed in a comment. There are no secrets to hide: keys and tokens live in files, named here
 * by path only.
 */
export function printConfig(table: SettingsTable, resolved: Resolved): string {
  const plain: Record<string, unknown> = {};
  for (const s of table.settings) {
    const v = resolved.values.get(s.name);
    if (v !== undefined) plain[s.name] = v;
  }
  const doc = new YamlDocument(plain);
  doc.commentBefore =
    ` vellum ${table.command}: the effective configuration` +
    ` (flag > environment > configuration file > default)`;
  if (isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      const name = String((pair.key as { value?: unknown }).value ?? pair.key);
      const node = pair.value as { comment?: string | null } | null;
      if (node !== null) node.comment = ` from ${resolved.sources.get(name) ?? "?"}`;
    }
  }
  const unset = table.settings.filter((s) => !resolved.values.has(s.name));
  const tail = unset.length === 0 ? "" : `# not set: ${unset.map((s) => s.name).join(", ")}\n`;
  return `${doc.toString({ lineWidth: 0 })}${tail}`;
}

/** Typed access to resolved values (the table guarantees each name's kind). */
export const settingsOf = (resolved: Resolved) => ({
  str: (name: string) => resolved.values.get(name) as string | undefined,
  int: (name: string) => resolved.values.get(name) as number | undefined,
  bool: (name: string) => resolved.values.get(name) === true,
  list: (name: string) => (resolved.values.get(name) as readonly string[] | undefined) ?? [],
});

/** The resolved values as an object keyed like commander's options (`witnessPolicy`). */
export function asOptions<T>(resolved: Resolved): T {
  return Object.fromEntries([...resolved.values].map(([k, v]) => [camel(k), v])) as T;
}

/** The contents of a file a setting names; a usage error naming the option if unreadable. */
export function readInput(path: string, option: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw usageError(`${option} ${path} cannot be read (${why})`);
  }
}
