/**
 * Durable file writes (src/platform/durable-file.ts), sync and async: the content lands whole,
 * a new file gets the requested mode, an existing one is replaced, and no temp file is left.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeFileDurably, writeFileDurablyAsync } from "../../src/platform/durable-file.js";

describe.each([
  ["writeFileDurably", async (p: string, d: string, m?: number) => writeFileDurably(p, d, m)],
  ["writeFileDurablyAsync", writeFileDurablyAsync],
])("%s", (_name, write) => {
  it("writes whole, with the mode asked for, replaces, and leaves no temp file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vellum-durable-"));
    const path = join(dir, "state.json");
    await write(path, "first\n", 0o600);
    expect(readFileSync(path, "utf8")).toBe("first\n");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await write(path, "second, longer\n", 0o600);
    expect(readFileSync(path, "utf8")).toBe("second, longer\n");
    expect(readdirSync(dir)).toEqual(["state.json"]);
    await expect(write(join(dir, "missing", "x"), "y")).rejects.toMatchObject({ code: "ENOENT" });
  });
});
