/**
 * Real services for tests (PostgreSQL, radosgw with Object Lock, Chromium): what
 * `scripts/services.sh up NAME` wrote to .services/NAME.env, overridden by the same variables
 * in the environment. Locally a test whose service is missing skips with a message saying how to
 * start it; under CI=true a missing service fails the test instead (CI starts every service).
 */

import { type ServiceName, serviceEnv } from "../../scripts/lib/services-env.js";

export { S3_KEYS, type ServiceName, serviceEnv } from "../../scripts/lib/services-env.js";

/**
 * For `describe.skipIf(!svc)`: the service's variables when it runs; otherwise, locally, undefined
 * after printing how to start it, and under CI an error (a service CI needs must never be skipped).
 */
export function needService(
  name: ServiceName,
  keys: readonly string[],
): Record<string, string> | undefined {
  const env = serviceEnv(name, keys);
  if (env) return env;
  const how = `start it with: scripts/services.sh up ${name}`;
  if (process.env.CI === "true")
    throw new Error(`CI needs the ${name} service (${keys.join(", ")}); ${how}`);
  console.warn(`skipping tests that need ${name}: ${how}`);
  return undefined;
}
