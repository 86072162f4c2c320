// Every resource kind Ambit accepts: API group, served versions, names the CLI understands
// (kubectl's forms: kind, plural, singular, short names) and the schema of its spec.
import { z } from "zod";
import * as core from "./core.js";
import * as gateway from "./gateway.js";
import * as networking from "./networking.js";
import * as security from "./security.js";
import type { ConfigMapData } from "./configmap.js";
import type { Kind, Resource } from "./types.js";

export interface KindInfo {
  kind: Kind;
  /** API group; "" for the Kubernetes core group (apiVersion "v1"). */
  group: string;
  versions: readonly string[];
  plural: string;
  singular: string;
  shortNames: readonly string[];
  namespaced: boolean;
  spec: z.ZodType;
  /** Whether a document must carry `spec` (Namespace may omit it). */
  specRequired: boolean;
}

const ISTIO_NET = ["v1", "v1beta1", "v1alpha3"] as const;
const ISTIO_SEC = ["v1", "v1beta1"] as const;
const GATEWAY_API = ["v1", "v1beta1"] as const;

export const KIND_INFO: readonly KindInfo[] = [
  {
    kind: "Namespace",
    group: "",
    versions: ["v1"],
    plural: "namespaces",
    singular: "namespace",
    shortNames: ["ns"],
    namespaced: false,
    spec: core.namespaceSpec,
    specRequired: false,
  },
  {
    kind: "Pod",
    group: "",
    versions: ["v1"],
    plural: "pods",
    singular: "pod",
    shortNames: ["po"],
    namespaced: true,
    spec: core.podSpec,
    specRequired: false,
  },
  {
    kind: "Service",
    group: "",
    versions: ["v1"],
    plural: "services",
    singular: "service",
    shortNames: ["svc"],
    namespaced: true,
    spec: core.serviceSpec,
    specRequired: true,
  },
  {
    kind: "ServiceEntry",
    group: "networking.istio.io",
    versions: ISTIO_NET,
    plural: "serviceentries",
    singular: "serviceentry",
    shortNames: ["se"],
    namespaced: true,
    spec: networking.serviceEntrySpec,
    specRequired: true,
  },
  {
    kind: "WorkloadEntry",
    group: "networking.istio.io",
    versions: ISTIO_NET,
    plural: "workloadentries",
    singular: "workloadentry",
    shortNames: ["we"],
    namespaced: true,
    spec: networking.workloadEntrySpec,
    specRequired: true,
  },
  {
    kind: "DestinationRule",
    group: "networking.istio.io",
    versions: ISTIO_NET,
    plural: "destinationrules",
    singular: "destinationrule",
    shortNames: ["dr"],
    namespaced: true,
    spec: networking.destinationRuleSpec,
    specRequired: true,
  },
  {
    kind: "VirtualService",
    group: "networking.istio.io",
    versions: ISTIO_NET,
    plural: "virtualservices",
    singular: "virtualservice",
    shortNames: ["vs"],
    namespaced: true,
    spec: networking.virtualServiceSpec,
    specRequired: true,
  },
  {
    kind: "AuthorizationPolicy",
    group: "security.istio.io",
    versions: ISTIO_SEC,
    plural: "authorizationpolicies",
    singular: "authorizationpolicy",
    shortNames: ["ap"],
    namespaced: true,
    spec: security.authorizationPolicySpec,
    specRequired: false,
  },
  {
    kind: "PeerAuthentication",
    group: "security.istio.io",
    versions: ISTIO_SEC,
    plural: "peerauthentications",
    singular: "peerauthentication",
    shortNames: ["pa"],
    namespaced: true,
    spec: security.peerAuthenticationSpec,
    specRequired: false,
  },
  {
    kind: "RequestAuthentication",
    group: "security.istio.io",
    versions: ISTIO_SEC,
    plural: "requestauthentications",
    singular: "requestauthentication",
    shortNames: ["ra"],
    namespaced: true,
    spec: security.requestAuthenticationSpec,
    specRequired: false,
  },
  {
    kind: "Gateway",
    group: "gateway.networking.k8s.io",
    versions: GATEWAY_API,
    plural: "gateways",
    singular: "gateway",
    shortNames: ["gtw"],
    namespaced: true,
    spec: gateway.gatewaySpec,
    specRequired: true,
  },
  {
    kind: "HTTPRoute",
    group: "gateway.networking.k8s.io",
    versions: GATEWAY_API,
    plural: "httproutes",
    singular: "httproute",
    shortNames: [],
    namespaced: true,
    spec: gateway.httpRouteSpec,
    specRequired: true,
  },
  {
    kind: "GRPCRoute",
    group: "gateway.networking.k8s.io",
    versions: GATEWAY_API,
    plural: "grpcroutes",
    singular: "grpcroute",
    shortNames: [],
    namespaced: true,
    spec: gateway.grpcRouteSpec,
    specRequired: true,
  },
  {
    // Only istio-system/istio (MeshConfig in data.mesh) is accepted; see configmap.ts.
    kind: "ConfigMap",
    group: "",
    versions: ["v1"],
    plural: "configmaps",
    singular: "configmap",
    shortNames: ["cm"],
    namespaced: true,
    // A ConfigMap has `data`, not `spec`; load.ts validates it.
    spec: z.undefined(),
    specRequired: false,
  },
];

const BY_KIND = new Map<string, KindInfo>(KIND_INFO.map((k) => [k.kind, k]));

export function kindInfo(kind: string): KindInfo | undefined {
  return BY_KIND.get(kind);
}

/** Resolve what a user typed (`ap`, `AuthorizationPolicies`, `authorizationpolicy.security.istio.io`) to a kind. */
export function resolveKindName(name: string): KindInfo | undefined {
  const lower = name.toLowerCase();
  const dot = lower.indexOf(".");
  const base = dot >= 0 ? lower.slice(0, dot) : lower;
  const group = dot >= 0 ? lower.slice(dot + 1) : undefined;
  return KIND_INFO.find(
    (k) =>
      (group === undefined || k.group === group) &&
      (k.kind.toLowerCase() === base ||
        k.plural === base ||
        k.singular === base ||
        k.shortNames.includes(base)),
  );
}

export function apiVersionsOf(info: KindInfo): string[] {
  return info.versions.map((v) => (info.group ? `${info.group}/${v}` : v));
}

export type AuthorizationPolicy = Resource<"AuthorizationPolicy", security.AuthorizationPolicySpec>;
export type PeerAuthentication = Resource<"PeerAuthentication", security.PeerAuthenticationSpec>;
export type RequestAuthentication = Resource<"RequestAuthentication", security.RequestAuthenticationSpec>;
export type NamespaceResource = Resource<"Namespace", core.NamespaceSpec | undefined>;
export type Pod = Resource<"Pod", core.PodSpec> & { status?: core.PodStatus };
export type Service = Resource<"Service", core.ServiceSpec>;
export type ServiceEntry = Resource<"ServiceEntry", networking.ServiceEntrySpec>;
export type WorkloadEntry = Resource<"WorkloadEntry", networking.WorkloadEntrySpec>;
export type DestinationRule = Resource<"DestinationRule", networking.DestinationRuleSpec>;
export type VirtualService = Resource<"VirtualService", networking.VirtualServiceSpec>;
export type Gateway = Resource<"Gateway", gateway.GatewaySpec>;
export type HTTPRoute = Resource<"HTTPRoute", gateway.HTTPRouteSpec>;
export type GRPCRoute = Resource<"GRPCRoute", gateway.GRPCRouteSpec>;
export type ConfigMap = Resource<"ConfigMap", undefined> & { data: ConfigMapData };

export type AnyResource =
  | AuthorizationPolicy
  | PeerAuthentication
  | RequestAuthentication
  | NamespaceResource
  | Pod
  | Service
  | ServiceEntry
  | WorkloadEntry
  | DestinationRule
  | VirtualService
  | Gateway
  | HTTPRoute
  | GRPCRoute
  | ConfigMap;
