/**
 * @module
 * `vellum/client`: the SDK for integrators. Browser-safe: only `fetch` and the verifier core.
 * (The Node file store for trusted state is `vellum/client/node`.)
 */
export * from "./http.js";
export * from "./monitor.js";
export {
  EVIDENCE_FORMAT,
  type Evidence,
  type EvidenceCheck,
  type EvidenceCheckpoint,
  type EvidenceResource,
  MonitorError,
  verifyEvidence,
} from "./monitor-evidence.js";
export * from "./receipts.js";
export * from "./tiles.js";
export * from "./verifying.js";
export * from "./witness-views.js";
