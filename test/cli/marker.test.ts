/**
 * The rollback marker (src/cli/marker.ts) on real files: what start-up reads and refuses
 * (a missing or misplaced state mirror, a DATA/checkpoint deleted while the mirror holds one),
 * and the writer: every path gets the newest checkpoint; a write that fails (the mirror's
 * directory gone) is reported on each attempt and retried until it lands, then reported recovered.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointMarker, readMarkers } from "../../src/cli/marker.js";
import { CheckpointSigner } from "../../src/log/signer.js";

const signer = new CheckpointSigner("marker.test/log", new Uint8Array(32).fill(9));
const note = (size: number) => signer.sign(size, new Uint8Array(32).fill(size), 1_700_000_000).note;

function dirs() {
  const root = mkdtempSync(join(tmpdir(), "vellum-marker-"));
  const data = join(root, "data");
  const mirror = join(root, "mirror");
  mkdirSync(data);
  mkdirSync(mirror);
  return { root, data, mirror };
}

async function until(what: string, predicate: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("readMarkers", () => {
  it("reads DATA/checkpoint alone without a mirror, and both with one", () => {
    const { data, mirror } = dirs();
    expect(readMarkers(data)).toMatchObject({ lastPublished: undefined, remembered: [] });
    writeFileSync(join(data, "checkpoint"), note(5));
    writeFileSync(join(mirror, "checkpoint"), note(7));
    const m = readMarkers(data, mirror);
    expect(m.lastPublished).toBe(note(5));
    expect(m.remembered).toEqual([
      { where: `the state mirror ${join(mirror, "checkpoint")}`, note: note(7) },
    ]);
    expect(m.paths).toEqual([join(data, "checkpoint"), join(mirror, "checkpoint")]);
    expect(m.notices).toEqual([]);
  });

  it("notes a mirror written for the first time next to an existing DATA/checkpoint", () => {
    const { data, mirror } = dirs();
    writeFileSync(join(data, "checkpoint"), note(5));
    const m = readMarkers(data, mirror);
    expect(m.remembered).toEqual([]);
    expect(m.notices[0]).toMatch(/does not exist yet: it is written from now on/);
  });

  it("refuses DATA/checkpoint missing while the mirror holds a checkpoint", () => {
    const { data, mirror } = dirs();
    writeFileSync(join(mirror, "checkpoint"), note(12));
    expect(() => readMarkers(data, mirror)).toThrowError(
      expect.objectContaining({
        code: "STATE_MISMATCH",
        message: expect.stringMatching(
          /checkpoint is missing, but the state mirror .* holds a checkpoint of size 12: .*cp .*mirror\/checkpoint .*data\/checkpoint/,
        ),
      }),
    );
  });

  it("refuses a mirror that does not exist, or lies inside the data directory", () => {
    const { root, data } = dirs();
    // A usage error (exit 2), found before anything is created.
    expect(() => readMarkers(data, join(root, "absent"))).toThrowError(
      expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/mkdir -p/) }),
    );
    mkdirSync(join(data, "mirror"));
    for (const inside of [data, join(data, "mirror")]) {
      expect(() => readMarkers(data, inside)).toThrowError(
        expect.objectContaining({ message: expect.stringMatching(/inside the data directory/) }),
      );
    }
    // A mirror beside the data directory, even with a name that starts with "..", is outside.
    mkdirSync(join(root, "..mirror"));
    expect(readMarkers(data, join(root, "..mirror")).paths).toHaveLength(2);
  });
});

describe("CheckpointMarker", () => {
  it("writes the newest checkpoint to every path, at most once per delay", async () => {
    const { data, mirror } = dirs();
    const paths = [join(data, "checkpoint"), join(mirror, "checkpoint")];
    const marker = new CheckpointMarker(paths, { delayMs: 20 });
    marker.update({ note: note(1) });
    marker.update({ note: note(2) });
    await until("both written", () =>
      paths.every((p) => {
        try {
          return readFileSync(p, "utf8") === note(2);
        } catch {
          return false;
        }
      }),
    );
    marker.update({ note: note(3) });
    await marker.flush();
    for (const p of paths) expect(readFileSync(p, "utf8")).toBe(note(3));
  });

  it("reports a failed write on each attempt, retries, and reports the recovery", async () => {
    const { data, mirror } = dirs();
    const failures: string[] = [];
    let recovered = 0;
    const marker = new CheckpointMarker([join(data, "checkpoint"), join(mirror, "checkpoint")], {
      delayMs: 10,
      retryMs: 20,
      maxRetryMs: 40,
      onFailure: (e) => failures.push(e.message),
      onRecovered: () => recovered++,
    });
    rmSync(mirror, { recursive: true }); // a real fault: the mirror's directory is gone
    marker.update({ note: note(4) });
    await until("two failed attempts", () => failures.length >= 2);
    expect(marker.failing).toBe(true);
    expect(failures[0]).toMatch(/could not update .*mirror\/checkpoint: .*ENOENT/);
    expect(recovered).toBe(0);
    marker.update({ note: note(5) }); // newer while failing: the retry writes this one
    mkdirSync(mirror);
    await until("recovered", () => recovered === 1);
    expect(marker.failing).toBe(false);
    expect(readFileSync(join(mirror, "checkpoint"), "utf8")).toBe(note(5));
    expect(readFileSync(join(data, "checkpoint"), "utf8")).toBe(note(5));
    await marker.flush();
  });
});
