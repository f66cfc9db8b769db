/**
 * @module
 * The published key functions an index can follow a log with, by name: the index's process cannot
 * be handed a function, so the index store names the one it applies (child-store.ts).
 */
import { type IndexKey, indexKeysOfPayload } from "../core/event-keys.js";

export const KEY_FUNCTIONS = {
  /** OCSF events: actor, action, resource, tenant (src/core/event-keys.ts). */
  "event-keys": indexKeysOfPayload,
} as const satisfies Record<string, (payload: Uint8Array) => IndexKey[]>;

export type KeyFunctionName = keyof typeof KEY_FUNCTIONS;
