/** Entry ids (UUIDv7) and timestamps never decrease: within a process and across restarts. */
import { describe, expect, it } from "vitest";
import { formatUuid, uuidV7Time } from "../../src/core/entry.js";
import { IdGenerator } from "../../src/log/ids.js";
import { openMemoryLog, payloadOf } from "./helpers.js";

describe("ids", () => {
  it("are UUIDv7 with the timestamp in them, strictly increasing even as the clock steps back", () => {
    let now = 1_700_000_000_000;
    const gen = new IdGenerator(() => now);
    const first = gen.issue(5000); // more than 4,096 in one millisecond: borrows the next ones
    now -= 10_000;
    const later = gen.issue(10);
    const all = [...first, ...later];
    for (let i = 1; i < all.length; i++) {
      expect(formatUuid(all[i]!.id) > formatUuid(all[i - 1]!.id)).toBe(true);
      expect(all[i]!.timestamp).toBeGreaterThanOrEqual(all[i - 1]!.timestamp);
    }
    for (const { id, timestamp } of all) {
      expect(uuidV7Time(id)).toBe(timestamp);
      expect(id[6]! >> 4).toBe(7); // version
      expect(id[8]! >> 6).toBe(2); // variant
    }
  });

  it("keep increasing across a restart when the clock has not moved on", async () => {
    const clock = () => 1_700_000_000_000;
    const { log, db } = await openMemoryLog(undefined, { clock });
    let previous = (await log.submit(payloadOf(0))).idText;
    await log.close();
    let current = db;
    for (let run = 1; run <= 20; run++) {
      const { log: again, db: next } = await openMemoryLog(current.simulateRestart(), { clock });
      const id = (await again.submit(payloadOf(run))).idText;
      expect(id > previous, `run ${run}`).toBe(true);
      previous = id;
      await again.close();
      current = next;
    }
  });
});
