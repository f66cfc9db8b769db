/**
 * `vellum tokens`: create, list and revoke API tokens through a running server's admin API
 * (the server owns the database while it runs). Connects like every networked command
 * (src/cli/connection.ts: --url / VELLUM_URL, --token / --token-file / VELLUM_TOKEN, else the
 * data folder's admin.token); `--json` prints one JSON document.
 */
import type { Command } from "commander";
import { VellumClient } from "../client/http.js";
import {
  type ConnectionFlags,
  connectionOptions,
  explainUnauthenticated,
  resolveConnection,
} from "./connection.js";
import { exitCodesHelp, usageError } from "./exit-codes.js";

interface TokenJson {
  id: string;
  name: string;
  scopes: string[];
  created: number;
  expires: number | null;
  revoked: number | null;
  lastUsed: number | null;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * `--expires`: a duration from now (`90s`, `30m`, `12h`, `30d`, `2w`) or a date-time with a zone
 * (`2027-01-31T00:00:00Z`); returns ms since the epoch, in the future.
 */
export function parseExpiry(value: string, now = Date.now()): number {
  const m = /^(\d+)\s*([smhdw])$/.exec(value.trim());
  let at: number;
  if (m !== null) {
    at = now + Number(m[1]) * UNITS[m[2]!]! * 1000;
  } else if (/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/.test(value.trim())) {
    at = Date.parse(value);
  } else {
    at = Number.NaN;
  }
  if (!Number.isSafeInteger(at)) {
    throw usageError(
      `--expires "${value}": give a duration (90s, 30m, 12h, 30d, 2w) or a date-time with a zone (2027-01-31T00:00:00Z)`,
    );
  }
  if (at <= now) throw usageError(`--expires "${value}" is not in the future`);
  return at;
}

async function call(
  flags: ConnectionFlags,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const connection = resolveConnection(flags, process.env, { adminTokenFile: true });
  const client = new VellumClient({
    url: connection.url,
    ...(connection.token === undefined ? {} : { token: connection.token }),
    retries: 1,
  });
  try {
    const res = await client.request(path, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }),
    });
    return await res.json();
  } catch (e) {
    throw explainUnauthenticated(e, connection);
  }
}

const when = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

export function registerTokens(program: Command): void {
  const tokens = connectionOptions(
    program
      .command("tokens")
      .description("create, list and revoke API tokens (through a running server's admin API)"),
    "admin",
    { adminTokenFile: true },
  ).addHelpText(
    "after",
    "\nExamples:\n  npx vellum tokens create --name ingest --scopes append\n" +
      "  npx vellum tokens create --name auditor-q3 --scopes read --expires 30d\n" +
      "  npx vellum tokens list\n  npx vellum tokens revoke 3f2a9c0d1e4b5a69\n" +
      exitCodesHelp([0, 2, 4]),
  );
  // The connection options may come before or after the subcommand.
  const flags = (o: ConnectionFlags): ConnectionFlags => ({
    ...tokens.opts<ConnectionFlags>(),
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  });

  connectionOptions(
    tokens
      .command("create")
      .description("create a token; prints the secret once on standard output"),
    "admin",
    { adminTokenFile: true },
  )
    .requiredOption("--name <name>", "what the token is for (unique among working tokens)")
    .option(
      "--scopes <list>",
      "comma-separated: append, read, admin, audit (reads the access log)",
      "append",
    )
    .option(
      "--expires <when>",
      "when it stops working: a duration (90s, 30m, 12h, 30d, 2w) or a date-time (2027-01-31T00:00:00Z); default never",
    )
    .option(
      "--tenants <list>",
      "comma-separated tenant ids (metadata.tenant_uid): a read token that sees only their events",
    )
    .option("--json", "print the new token (secret included) as one JSON document")
    .addHelpText("after", exitCodesHelp([0, 2, 4]))
    .action(
      async (
        o: ConnectionFlags & {
          name: string;
          scopes: string;
          expires?: string;
          tenants?: string;
          json?: boolean;
        },
      ) => {
        const scopes = o.scopes
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        const expires = o.expires === undefined ? undefined : parseExpiry(o.expires);
        const tenants = o.tenants
          ?.split(",")
          .map((t) => t.trim())
          .filter(Boolean);
        const made = (await call(flags(o), "POST", "/v1/tokens", {
          name: o.name,
          scopes,
          ...(expires === undefined ? {} : { expires }),
          ...(tenants === undefined ? {} : { tenants }),
        })) as TokenJson & { token: string };
        if (o.json === true) {
          process.stdout.write(`${JSON.stringify(made)}\n`);
          return;
        }
        const until =
          (made.expires === null ? "" : `, expires ${when(made.expires)}`) +
          (tenants === undefined ? "" : `, tenants ${tenants.join(", ")}`);
        process.stderr.write(
          `created token ${made.id} (${made.scopes.join(", ")}${until}); it is shown only now:\n`,
        );
        process.stdout.write(`${made.token}\n`);
      },
    );

  connectionOptions(
    tokens.command("list").description("list tokens (never their secrets)"),
    "admin",
    { adminTokenFile: true },
  )
    .option("--json", "print {tokens: [...]} as one JSON document")
    .addHelpText(
      "after",
      "\nColumns: id, state (active, revoked, expired), scopes, created, expires, last used, name.\n" +
        "The last-used time is exact while the server runs and stored at most once a minute.\n" +
        exitCodesHelp([0, 2, 4]),
    )
    .action(async (o: ConnectionFlags & { json?: boolean }) => {
      const answer = (await call(flags(o), "GET", "/v1/tokens")) as { tokens: TokenJson[] };
      if (o.json === true) {
        process.stdout.write(`${JSON.stringify(answer)}\n`);
        return;
      }
      const now = Date.now();
      for (const t of answer.tokens) {
        const state =
          t.revoked !== null
            ? "revoked"
            : t.expires !== null && t.expires <= now
              ? "expired"
              : "active ";
        process.stdout.write(
          `${t.id}  ${state}  ${t.scopes.join(",").padEnd(18)}  ${when(t.created)}  ${when(t.expires).padEnd(24)}  ${when(t.lastUsed).padEnd(24)}  ${t.name}\n`,
        );
      }
    });

  connectionOptions(
    tokens.command("revoke <id>").description("revoke a token by id; it stops working at once"),
    "admin",
    { adminTokenFile: true },
  )
    .option("--json", "print the revoked token as one JSON document")
    .addHelpText("after", exitCodesHelp([0, 2, 4]))
    .action(async (id: string, o: ConnectionFlags & { json?: boolean }) => {
      const revoked = (await call(
        flags(o),
        "POST",
        `/v1/tokens/${encodeURIComponent(id)}/revoke`,
      )) as TokenJson;
      if (o.json === true) process.stdout.write(`${JSON.stringify(revoked)}\n`);
      else process.stdout.write(`revoked ${id}\n`);
    });
}
