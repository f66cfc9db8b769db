/**
 * Real `vellum` processes for end-to-end tests: start one (`serve`, `witness`, …) on a port the OS
 * picks, wait until it prints its URL and answers (scripts/lib/vellum-process.ts), and make sure
 * none outlives the tests of a file.
 */
import { afterAll } from "vitest";
import { killAllVellum } from "../../scripts/lib/vellum-process.js";

export {
  spawnVellum,
  startVellum,
  type VellumProcess,
} from "../../scripts/lib/vellum-process.js";

afterAll(() => killAllVellum());
