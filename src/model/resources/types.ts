// The typed, validated, defaulted resources every other layer consumes.
import type { ObjectMeta } from "./common.js";

export const KINDS = [
  "Namespace",
  "Pod",
  "Service",
  "ServiceEntry",
  "WorkloadEntry",
  "DestinationRule",
  "VirtualService",
  "AuthorizationPolicy",
  "PeerAuthentication",
  "RequestAuthentication",
  "Gateway",
  "HTTPRoute",
  "GRPCRoute",
  "ConfigMap",
] as const;
export type Kind = (typeof KINDS)[number];

/** Where a resource came from, for error messages and status. */
export interface Origin {
  file: string;
  index: number;
}

export interface Resource<K extends Kind = Kind, S = unknown> {
  /** apiVersion as written (e.g. security.istio.io/v1beta1). */
  apiVersion: string;
  kind: K;
  /** Metadata with defaults applied: namespaced kinds always have a namespace. */
  metadata: ObjectMeta & { namespace?: string };
  spec: S;
  origin?: Origin;
}

/** "Kind namespace/name" or "Kind name" for cluster-scoped kinds. */
export function resourceId(r: {
  kind: string;
  metadata: { name: string; namespace?: string | undefined };
}): string {
  return r.metadata.namespace
    ? `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`
    : `${r.kind} ${r.metadata.name}`;
}

/** A stable key for a resource: kind/namespace/name. */
export function resourceKey(r: {
  kind: string;
  metadata: { name: string; namespace?: string | undefined };
}): string {
  return `${r.kind}/${r.metadata.namespace ?? ""}/${r.metadata.name}`;
}
