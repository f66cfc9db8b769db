/**
 * The SDK (`vellum/client`) must work in browsers: it bundles for the browser platform with no
 * Node built-in, and the bundle verifies a real receipt inside a bare JavaScript context that has
 * only web globals (no Buffer, no process, no require) — the equivalent of a browser page.
 */
import { runInNewContext } from "node:vm";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { openMemoryLog, payloadOf } from "../log/helpers.js";

describe("browser bundle of the SDK", () => {
  it("builds without node:* and verifies a receipt with web globals only", async () => {
    const result = await build({
      entryPoints: [new URL("../../src/client/index.ts", import.meta.url).pathname],
      bundle: true,
      platform: "browser",
      format: "iife",
      globalName: "Vellum",
      write: false,
      logLevel: "silent",
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/require\(["']node:/);

    const { log } = await openMemoryLog();
    const receipt = await log.submit(payloadOf(42));
    const text = await receipt.tlogProof();
    const context = {
      TextEncoder,
      TextDecoder,
      URL,
      AbortSignal,
      setTimeout,
      clearTimeout,
      console,
      crypto: { getRandomValues: (a: Uint8Array) => crypto.getRandomValues(a) },
      input: { text, key: log.signer.verifierKey, payload: payloadOf(42), other: payloadOf(43) },
      result: undefined as unknown,
    };
    runInNewContext(
      `${code}
       const ok = Vellum.verifyReceipt(input.text, { logKey: input.key, payload: input.payload });
       let refused = "no error";
       try { Vellum.verifyReceipt(input.text, { logKey: input.key, payload: input.other }); }
       catch (e) { refused = e.code; }
       result = { index: ok.index, size: ok.treeSize, refused, hasBuffer: typeof Buffer, hasProcess: typeof process };`,
      context,
    );
    expect(context.result).toEqual({
      index: receipt.index,
      size: receipt.treeSize,
      refused: "PROOF_MISMATCH",
      hasBuffer: "undefined",
      hasProcess: "undefined",
    });
    await log.close();
  });
});
