/**
 * The variables of a service `scripts/services.sh up NAME` started (written to
 * .services/NAME.env), overridden by the same variables in the environment; shared by the tests
 * (test/helpers/services.ts) and the benchmarks.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export type ServiceName = "postgres" | "s3" | "chromium";

/** What `scripts/services.sh up s3` exports: the endpoint, throwaway keys, a locked bucket. */
export const S3_KEYS = [
  "AWS_ENDPOINT_URL",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_REGION",
  "VELLUM_BUCKET",
] as const;

/** The service's variables, or undefined when it has not been started. */
export function serviceEnv(
  name: ServiceName,
  keys: readonly string[],
): Record<string, string> | undefined {
  const file = `${ROOT}.services/${name}.env`;
  const fromFile: Record<string, string> = {};
  if (existsSync(file)) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) fromFile[m[1] as string] = m[2] as string;
    }
  }
  const out: Record<string, string> = {};
  for (const key of keys) {
    const value = process.env[key] ?? fromFile[key];
    if (value === undefined || value === "") return undefined;
    out[key] = value;
  }
  return out;
}
