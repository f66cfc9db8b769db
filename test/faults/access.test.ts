/**
 * The access log fails closed on a real storage fault: `vellum serve --access-log` with
 * `strace -e inject=write:error=ENOSPC` on the database's write-ahead log. While the disk is
 * "full", a read of an entry cannot be recorded, so it is refused (503) and its payload is never
 * sent; once the fault clears, the same process records and answers again, and the read it
 * answered is in the access log.
 *
 * Needs root (ptrace) and strace: skipped without them, except under CI=true.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect } from "vitest";
import { StraceInjector, walPathsAhead } from "../../scripts/lib/fault-env.js";
import { startVellum } from "../../scripts/lib/vellum-process.js";
import { faultIt } from "./helpers.js";

describe("the access log under a storage fault", () => {
  faultIt(
    "refuses reads it cannot record (503, nothing sent), and records again once the fault clears",
    ["strace"],
    async (work) => {
      const data = join(work, "data");
      const server = await startVellum(
        [
          "serve",
          "--data",
          data,
          "--port",
          "0",
          "--host",
          "127.0.0.1",
          "--access-log",
          "--no-index",
        ],
        "/readyz",
      );
      try {
        const token = readFileSync(join(data, "admin.token"), "utf8").trim();
        const auth = { Authorization: `Bearer ${token}` };
        const secret = "invoice 42: wire 1,000,000 to account 7";
        const posted = await fetch(`${server.url}/v1/entries`, {
          method: "POST",
          headers: auth,
          body: secret,
        });
        expect(posted.status).toBe(201);
        const strace = await StraceInjector.attach(
          server.child.pid!,
          { syscall: "write", error: "ENOSPC", paths: walPathsAhead(join(data, "db")) },
          join(work, "strace.txt"),
        );
        try {
          const refused = await fetch(`${server.url}/v1/entries/0`, { headers: auth });
          expect(refused.status).toBe(503);
          const body = await refused.text();
          expect(body).toMatch(/could not be recorded in the access log/);
          expect(body).not.toContain(Buffer.from(secret).toString("base64"));
          expect(strace.injected()).toBeGreaterThan(0);
        } finally {
          await strace.detach();
        }
        // The same process recovers (the driver reopens the database) and records again.
        let status = 0;
        for (let i = 0; i < 100 && status !== 200; i++) {
          await new Promise((r) => setTimeout(r, 150));
          status = (await fetch(`${server.url}/v1/entries/0`, { headers: auth })).status;
        }
        expect(status).toBe(200);
        const cp = await (await fetch(`${server.url}/access/checkpoint`)).text();
        expect(Number(cp.split("\n")[1])).toBeGreaterThanOrEqual(1);
        expect(server.output()).toMatch(/ENOSPC/);
      } finally {
        await server.kill();
      }
    },
    60_000,
  );
});
