/**
 * `vellum tokens`: create, list and revoke API tokens through a running server's admin API
 * (the server owns the database while it runs). Authenticates with an admin token from
 * VELLUM_TOKEN or a token file (default: the data folder's admin.token).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { DEFAULT_DATA, DEFAULT_HOST, DEFAULT_PORT } from "./serve.js";

interface ClientOptions {
  url: string;
  tokenFile: string;
}

function adminToken(opts: ClientOptions): string {
  const fromEnv = process.env.VELLUM_TOKEN;
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv.trim();
  try {
    return readFileSync(opts.tokenFile, "utf8").trim();
  } catch {
    throw new Error(
      `no admin token: set VELLUM_TOKEN or pass --token-file (tried ${opts.tokenFile})`,
    );
  }
}

async function call(
  opts: ClientOptions,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(path, opts.url), {
      method,
      headers: {
        Authorization: `Bearer ${adminToken(opts)}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    throw new Error(
      `cannot reach ${opts.url} (${(e as Error).message}); is \`vellum serve\` running?`,
    );
  }
  const answer = (await res.json().catch(() => ({}))) as { detail?: string; code?: string };
  if (!res.ok)
    throw new Error(`${res.status} ${answer.code ?? ""}: ${answer.detail ?? res.statusText}`);
  return answer;
}

export function registerTokens(program: Command): void {
  const tokens = program
    .command("tokens")
    .description("create, list and revoke API tokens (through a running server's admin API)")
    .option(
      "--url <url>",
      "the server",
      process.env.VELLUM_URL ?? `http://${DEFAULT_HOST}:${DEFAULT_PORT}`,
    )
    .option(
      "--token-file <file>",
      "admin token file (or env VELLUM_TOKEN)",
      join(process.env.VELLUM_DATA ?? DEFAULT_DATA, "admin.token"),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  npx vellum tokens create --name ingest --scopes append\n  npx vellum tokens list\n  npx vellum tokens revoke 3f2a9c0d1e4b5a69\n",
    );
  const parent = () => tokens.opts<ClientOptions>();

  tokens
    .command("create")
    .description("create a token; prints the secret once on standard output")
    .requiredOption("--name <name>", "what the token is for")
    .option("--scopes <list>", "comma-separated: append, read, admin", "append")
    .action(async (o: { name: string; scopes: string }) => {
      const scopes = o.scopes
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const made = (await call(parent(), "POST", "/v1/tokens", { name: o.name, scopes })) as {
        token: string;
        id: string;
        scopes: string[];
      };
      process.stderr.write(
        `created token ${made.id} (${made.scopes.join(", ")}); it is shown only now:\n`,
      );
      process.stdout.write(`${made.token}\n`);
    });

  tokens
    .command("list")
    .description("list tokens (never their secrets)")
    .action(async () => {
      const { tokens: list } = (await call(parent(), "GET", "/v1/tokens")) as {
        tokens: {
          id: string;
          name: string;
          scopes: string[];
          created: number;
          revoked: number | null;
        }[];
      };
      for (const t of list) {
        const state = t.revoked === null ? "active " : "revoked";
        process.stdout.write(
          `${t.id}  ${state}  ${t.scopes.join(",").padEnd(18)}  ${new Date(t.created).toISOString()}  ${t.name}\n`,
        );
      }
    });

  tokens
    .command("revoke <id>")
    .description("revoke a token by id; it stops working at once")
    .action(async (id: string) => {
      await call(parent(), "POST", `/v1/tokens/${encodeURIComponent(id)}/revoke`);
      process.stdout.write(`revoked ${id}\n`);
    });
}
