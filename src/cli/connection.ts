/**
 * @module
 * Where a networked command (`submit`, `inspect`, `monitor`, `tokens`) connects and with which
 * token: the same options, the same environment and the same order for every one of them, so
 * that `VELLUM_URL` and `VELLUM_TOKEN` set once work everywhere.
 *
 *   server: --url, else $VELLUM_URL, else http://127.0.0.1:6962
 *   token:  --token, else --token-file, else $VELLUM_TOKEN, else (submit and tokens only, the
 *           commands of the server's own operator) the data folder's admin.token
 *           ($VELLUM_DATA or ./vellum-data) if there is one, else none
 *
 * `inspect` and `monitor` never pick up the admin token on their own: they are pointed at other
 * people's logs, which must not be sent this server's admin secret.
 * Flags win over the environment, the environment over defaults. A token file that was named
 * (flag) must exist and hold a token: a missing one is a usage error naming the path, never a
 * request without a token that the server then refuses with 401. The URL is checked at once
 * (a malformed one is a usage error, not retries).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { checkServerUrl } from "../client/http.js";
import { VellumError } from "../core/errors.js";
import { usageError } from "./exit-codes.js";
import { DEFAULT_DATA, DEFAULT_HOST, DEFAULT_PORT } from "./serve.js";

export const DEFAULT_URL = `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;

export interface ConnectionFlags {
  url?: string;
  token?: string;
  tokenFile?: string;
}

export interface Connection {
  readonly url: string;
  readonly token: string | undefined;
  /** Where the token came from, for messages (never the token itself). */
  readonly tokenSource: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Adds --url, --token and --token-file, described the same way on every command. */
export function connectionOptions(
  cmd: Command,
  scope: string,
  options: { adminTokenFile?: boolean; urlHelp?: string } = {},
): Command {
  return cmd
    .option(
      "--url <url>",
      `${options.urlHelp ?? "the log server"} (default: $VELLUM_URL, else ${DEFAULT_URL})`,
    )
    .option("--token <token>", `bearer token with the "${scope}" scope (default: $VELLUM_TOKEN)`)
    .option(
      "--token-file <file>",
      options.adminTokenFile === true
        ? "file holding the token (default: $VELLUM_TOKEN, else DATA/admin.token if there is one)"
        : "file holding the token (default: $VELLUM_TOKEN)",
    );
}

function readTokenFile(file: string, option: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw usageError(`${option} ${file}: cannot read it (${why})`);
  }
  const token = text.trim();
  if (token === "") throw usageError(`${option} ${file}: the file is empty`);
  return token;
}

/** The server and token a command uses (see the module comment for the order). */
export function resolveConnection(
  flags: ConnectionFlags,
  env: Env = process.env,
  options: { adminTokenFile?: boolean } = {},
): Connection {
  const raw = flags.url ?? (env.VELLUM_URL || undefined) ?? DEFAULT_URL;
  let url: string;
  try {
    url = checkServerUrl(raw);
  } catch (e) {
    const from = flags.url !== undefined ? "--url" : env.VELLUM_URL ? "VELLUM_URL" : "the default";
    throw usageError(`${from}: ${(e as VellumError).message}`);
  }
  if (flags.token !== undefined && flags.tokenFile !== undefined) {
    throw usageError("give --token or --token-file, not both");
  }
  if (flags.token !== undefined) {
    if (flags.token.trim() === "") throw usageError("--token is empty");
    return { url, token: flags.token.trim(), tokenSource: "--token" };
  }
  if (flags.tokenFile !== undefined) {
    return {
      url,
      token: readTokenFile(flags.tokenFile, "--token-file"),
      tokenSource: flags.tokenFile,
    };
  }
  const fromEnv = env.VELLUM_TOKEN?.trim();
  if (fromEnv) return { url, token: fromEnv, tokenSource: "VELLUM_TOKEN" };
  if (options.adminTokenFile !== true) return { url, token: undefined, tokenSource: "none" };
  const file = join(env.VELLUM_DATA || DEFAULT_DATA, "admin.token");
  try {
    const token = readFileSync(file, "utf8").trim();
    if (token !== "") return { url, token, tokenSource: file };
  } catch {
    // no default token file: requests go without a token (public reads)
  }
  return { url, token: undefined, tokenSource: "none" };
}

/** The same for a 401 answer: which token was sent, so the fix is obvious. */
export function explainUnauthenticated(e: unknown, c: Connection): unknown {
  if (e instanceof VellumError && e.code === "UNAUTHENTICATED") {
    const which =
      c.token === undefined
        ? "no token was sent (give --token, --token-file or VELLUM_TOKEN)"
        : `the token from ${c.tokenSource} was refused`;
    return new VellumError("UNAUTHENTICATED", `${e.message}; ${which}`, { cause: e });
  }
  return e;
}
