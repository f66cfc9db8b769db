/**
 * @module
 * DATA/admin.token: the token `vellum serve` makes on first start with every scope, and again
 * whenever every admin token has been revoked (restarting the server is then the way back in:
 * whoever can restart it can read DATA anyway). The file is the secret's only copy (the store
 * keeps its hash): mode 0600, and made private with a warning if someone widened it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { TokenStore } from "../auth/tokens.js";
import type { Logger } from "../core/logger.js";
import { replaceSecretFile } from "../platform/durable-file.js";
import { restrictMode } from "./datadir.js";

export async function ensureAdminToken(
  tokens: TokenStore,
  dataDir: string,
  logger: Logger,
): Promise<void> {
  const tokenPath = join(dataDir, "admin.token");
  if (existsSync(tokenPath)) restrictMode(tokenPath, 0o600, (message) => logger.warn(message));
  if (tokens.hasActiveAdmin) return;
  const first = tokens.count === 0;
  const { token } = await tokens.create(first ? "admin (first start)" : "admin (restart)", [
    "admin",
    "append",
    "read",
    "audit",
  ]);
  replaceSecretFile(tokenPath, `${token}\n`);
  logger.info(
    first
      ? `created an admin token with every scope in ${tokenPath} (mode 0600)`
      : `no admin token was left (all revoked): created a new one in ${tokenPath} (mode 0600)`,
  );
}
