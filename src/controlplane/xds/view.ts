// The encoded resources every data-plane client is served: the converted snapshot as Any values
// with content-hash versions, rebuilt once per config change (not per client or per push).
import { createHash } from "node:crypto";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  encodeAny,
  REVOCATION_LIST_TYPE_URL,
  WAYPOINT_RESOURCE_TYPE_URL,
  type WaypointResourceMessage,
} from "../../api/xds-types.js";
import type { AnyResource } from "../../model/resources/registry.js";
import { buildSnapshot, type SnapshotInput } from "./convert.js";
import type { ResourceView, VersionedResource } from "./state.js";

function encodeAll(typeUrl: string, messages: ReadonlyMap<string, object>): Map<string, VersionedResource> {
  const out = new Map<string, VersionedResource>();
  for (const [name, message] of messages) {
    const any = encodeAny(typeUrl, message);
    const version = createHash("sha256").update(any.value).digest("hex").slice(0, 16);
    out.set(name, { name, version, resource: { typeUrl, value: any.value } });
  }
  return out;
}

/** The kinds a waypoint compiles itself (L7 policy, routing, upstream policy, providers). */
export const WAYPOINT_KINDS: ReadonlySet<string> = new Set([
  "AuthorizationPolicy",
  "RequestAuthentication",
  "HTTPRoute",
  "GRPCRoute",
  "VirtualService",
  "DestinationRule",
  "Gateway",
  "Service",
  "ServiceEntry",
  "ConfigMap",
  // Endpoint labels, for DestinationRule subsets.
  "Pod",
  "WorkloadEntry",
]);

/** Every L7 resource as accepted, keyed "Kind/namespace/name". */
export function waypointResources(resources: readonly AnyResource[]): Map<string, WaypointResourceMessage> {
  const out = new Map<string, WaypointResourceMessage>();
  for (const r of resources) {
    if (!WAYPOINT_KINDS.has(r.kind)) continue;
    const namespace = r.metadata.namespace ?? "";
    const plain: Record<string, unknown> = { ...r };
    delete plain["origin"];
    out.set(`${r.kind}/${namespace}/${r.metadata.name}`, {
      kind: r.kind,
      namespace,
      name: r.metadata.name,
      json: JSON.stringify(plain),
    });
  }
  return out;
}

export function buildResourceView(input: SnapshotInput): ResourceView {
  const s = buildSnapshot(input);
  return new Map([
    [WAYPOINT_RESOURCE_TYPE_URL, encodeAll(WAYPOINT_RESOURCE_TYPE_URL, waypointResources(input.resources))],
    [ADDRESS_TYPE_URL, encodeAll(ADDRESS_TYPE_URL, s.addresses)],
    [AUTHORIZATION_TYPE_URL, encodeAll(AUTHORIZATION_TYPE_URL, s.authorizations)],
    [REVOCATION_LIST_TYPE_URL, encodeAll(REVOCATION_LIST_TYPE_URL, s.revocations)],
  ]);
}
