/**
 * An in-process witness (memory storage) behind its real HTTP interface on 127.0.0.1, trusting
 * the test log's key; it can be stopped and restarted on the same port with the same state (a
 * witness that goes away and comes back). Servers close after the file's tests.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll } from "vitest";
import { verifierFromKey } from "../../src/core/keys.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { createWitnessApp } from "../../src/witness/app.js";
import { Witness } from "../../src/witness/witness.js";
import { ORIGIN } from "../log/helpers.js";

type Server = ReturnType<typeof serve>;
const servers = new Set<Server>();
afterAll(() => {
  for (const s of servers) s.close();
  servers.clear();
});

function listen(witness: Witness, port: number): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = serve(
      { fetch: createWitnessApp(witness).fetch, port, hostname: "127.0.0.1" },
      (info) => resolve({ server, port: (info as AddressInfo).port }),
    );
    servers.add(server);
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    servers.delete(server);
    server.close(() => resolve());
    // Keep-alive connections from the log would otherwise hold the port open.
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}

/**
 * Witness number `n` (its own key) trusting `logVkey` for the test origin, and each of `more`
 * verifier keys for the origin its name says (e.g. the index log's).
 */
export async function serveWitness(
  n: number,
  logVkey: string,
  tag = "test",
  more: readonly string[] = [],
) {
  const trusted = new Map([[ORIGIN, [verifierFromKey(logVkey)]]]);
  for (const vkey of more) trusted.set(verifierFromKey(vkey).name, [verifierFromKey(vkey)]);
  const witness = new Witness({
    name: `w${n}.${tag}/witness`,
    seed: new Uint8Array(32).fill(100 + n),
    kv: new MemoryDatabase().namespace("witness"),
    trusted,
  });
  let { server, port } = await listen(witness, 0);
  let running = true;
  return {
    witness,
    url: `http://127.0.0.1:${port}`,
    name: `w${n}`,
    vkey: witness.verifierKey,
    /** Stops answering (connections refused) until restart(). */
    async stop(): Promise<void> {
      if (!running) return;
      running = false;
      await close(server);
    },
    /** Serves again on the same port, with the state it had. */
    async restart(): Promise<void> {
      if (running) return;
      ({ server } = await listen(witness, port));
      running = true;
    },
  };
}
