/**
 * The way back in when every admin token has been revoked: restarting `vellum serve` on the data
 * directory mints a new admin token into DATA/admin.token (0600); the revoked one stays refused.
 */
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { startVellum } from "../helpers/processes.js";

it("a restart after the last admin token was revoked writes a new one", async () => {
  const data = join(mkdtempSync(join(tmpdir(), "vellum-admin-")), "data");
  const args = ["serve", "--data", data, "--port", "0"];
  let server = await startVellum(args, "/readyz");
  const first = readFileSync(join(data, "admin.token"), "utf8").trim();
  const as = (token: string, path: string, method = "GET") =>
    fetch(`${server.url}${path}`, { method, headers: { Authorization: `Bearer ${token}` } });
  const { tokens } = (await (await as(first, "/v1/tokens")).json()) as { tokens: { id: string }[] };
  expect(tokens).toHaveLength(1);
  expect((await as(first, `/v1/tokens/${tokens[0]!.id}/revoke`, "POST")).status).toBe(200);
  expect((await as(first, "/v1/tokens")).status).toBe(401);
  expect((await server.stop()).code).toBe(0);

  server = await startVellum(args, "/readyz");
  expect(server.output()).toMatch(/no admin token was left \(all revoked\): created a new one/);
  const second = readFileSync(join(data, "admin.token"), "utf8").trim();
  expect(second).not.toBe(first);
  expect(statSync(join(data, "admin.token")).mode & 0o777).toBe(0o600);
  expect((await as(second, "/v1/tokens")).status).toBe(200);
  expect((await as(first, "/v1/tokens")).status).toBe(401);
  expect((await server.stop()).code).toBe(0);

  // With an admin token active, a restart leaves the file alone.
  server = await startVellum(args, "/readyz");
  expect(server.output()).not.toMatch(/admin token/);
  expect(readFileSync(join(data, "admin.token"), "utf8").trim()).toBe(second);
  expect((await server.stop()).code).toBe(0);
});
