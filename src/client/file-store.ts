/**
 * @module
 * A TrustedStore in files (Node only): one file per log key in a directory, named by the
 * SHA-256 of the key, written atomically and durably (src/platform/durable-file.ts).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurablyAsync } from "../platform/durable-file.js";
import type { TrustedStore } from "./verifying.js";

export class FileTrustedStore implements TrustedStore {
  constructor(readonly dir: string) {}

  #path(logKey: string): string {
    return join(this.dir, `${createHash("sha256").update(logKey).digest("hex")}.checkpoint`);
  }

  async load(logKey: string): Promise<string | undefined> {
    try {
      return await readFile(this.#path(logKey), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async save(logKey: string, checkpoint: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileDurablyAsync(this.#path(logKey), checkpoint, 0o600);
  }
}
