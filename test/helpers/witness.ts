/**
 * An in-process witness (memory storage) behind its real HTTP interface on 127.0.0.1, trusting
 * the test log's key; servers close after the file's tests.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll } from "vitest";
import { verifierFromKey } from "../../src/core/keys.js";
import { MemoryDatabase } from "../../src/storage/memory.js";
import { createWitnessApp } from "../../src/witness/app.js";
import { Witness } from "../../src/witness/witness.js";
import { ORIGIN } from "../log/helpers.js";

const servers: ReturnType<typeof serve>[] = [];
afterAll(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Witness number `n` (its own key) trusting `logVkey` for the test origin. */
export async function serveWitness(n: number, logVkey: string, tag = "test") {
  const witness = new Witness({
    name: `w${n}.${tag}/witness`,
    seed: new Uint8Array(32).fill(100 + n),
    kv: new MemoryDatabase().namespace("witness"),
    trusted: new Map([[ORIGIN, [verifierFromKey(logVkey)]]]),
  });
  const url = await new Promise<string>((resolve) => {
    const s = serve(
      { fetch: createWitnessApp(witness).fetch, port: 0, hostname: "127.0.0.1" },
      (info) => resolve(`http://127.0.0.1:${(info as AddressInfo).port}`),
    );
    servers.push(s);
  });
  return { witness, url, name: `w${n}`, vkey: witness.verifierKey };
}
