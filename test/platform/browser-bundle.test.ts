/**
 * The verifier library must run in browsers: bundling its main entry for the browser platform
 * must succeed without any Node.js built-in, and the bundle must verify a real proof.
 */
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

describe("browser bundle of the verifier library", () => {
  it("bundles src/index.ts for the browser with no node:* module and verifies vectors", async () => {
    const result = await build({
      entryPoints: [new URL("../../src/index.ts", import.meta.url).pathname],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/from\s*["']node:/);
    expect(code).not.toMatch(/require\(["'](node:)?(crypto|fs|path|buffer)["']\)/);
    // Load the bundle as a module and use it: the golden note and an RFC 6962 root.
    const url = `data:text/javascript;base64,${Buffer.from(code).toString("base64")}`;
    const lib = await import(/* @vite-ignore */ url);
    expect(lib.cryptoProvider().name).toBe("noble");
    const vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const note =
      "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const verified = lib.verifyNote(note, [lib.verifierFromKey(vkey)]);
    expect(verified.signatures).toHaveLength(1);
    expect(() =>
      lib.verifyNote(note.replace("cryptography", "cryptogrophy"), [lib.verifierFromKey(vkey)]),
    ).toThrow();
    expect(lib.base64Encode(lib.EMPTY_ROOT)).toBe("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  });
});
