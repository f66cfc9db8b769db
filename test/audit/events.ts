/** Valid OCSF 1.8.0 events for the audit trail's tests. */
export function apiActivity(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    class_uid: 6003,
    category_uid: 6,
    activity_id: 3,
    type_uid: 600303,
    time: 1_764_748_800_000,
    severity_id: 1,
    status_id: 1,
    actor: { user: { uid: "alice", name: "Alice" } },
    api: { operation: "UpdateInvoice", service: { name: "billing" } },
    resources: [{ uid: "invoice-42", type: "invoice" }],
    src_endpoint: { ip: "192.0.2.7" },
    metadata: { product: { name: "billing", vendor_name: "Acme" }, version: "1.8.0", uid: "evt-1" },
    ...overrides,
  };
}

export function authentication(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    class_uid: 3002,
    category_uid: 3,
    activity_id: 1,
    type_uid: 300201,
    time: 1_764_748_800_000,
    severity_id: 1,
    status_id: 2,
    status: "Failure",
    user: { uid: "bob" },
    src_endpoint: { hostname: "laptop-7" },
    metadata: { product: { name: "sso" }, version: "1.8.0" },
    ...overrides,
  };
}
