// The routing model's data: what compileRoutes takes, the index it builds, and the decision
// selectRoute hands the waypoint's router for one request. Plain, immutable data.
import type { GRPCRoute, HTTPRoute, VirtualService } from "../resources/registry.js";

export interface ServicePort {
  port: number;
  name?: string | undefined;
  appProtocol?: string | undefined;
}

/** A Service the waypoint knows (parents and backends are resolved against these). */
export interface ServiceInfo {
  name: string;
  namespace: string;
  /** "name.ns.svc.cluster.local" */
  host: string;
  ports: readonly ServicePort[];
}

export interface RouteInput {
  httpRoutes: readonly HTTPRoute[];
  grpcRoutes: readonly GRPCRoute[];
  virtualServices: readonly VirtualService[];
  services: readonly ServiceInfo[];
  /** Cluster domain for short names; default "cluster.local". */
  domain?: string | undefined;
  /**
   * The waypoint's own namespace. Routes there also apply to the Services it serves (Istio's
   * "consumer override"); without it only routes in each Service's own namespace apply.
   */
  waypointNamespace?: string | undefined;
}

export interface ServiceRef {
  namespace: string;
  name: string;
}

/** Header edits with lower-case names, applied remove → set → add (Envoy's order). */
export interface HeaderModifier {
  set: readonly { name: string; value: string }[];
  add: readonly { name: string; value: string }[];
  remove: readonly string[];
}

export interface RouteBackend {
  service: ServiceRef;
  host: string;
  port: number;
  weight: number;
  /** A DestinationRule subset (VirtualService destinations only). */
  subset?: string;
  requestHeaders?: HeaderModifier;
  responseHeaders?: HeaderModifier;
  /** Authority rewrite from this destination's headers (VirtualService), unless the route sets one. */
  hostRewrite?: string;
}

/** A share of traffic whose backend could not be resolved: answered with `status`. */
export interface InvalidBackend {
  weight: number;
  status: number;
  reason: string;
}

export type PathRewrite =
  /** Replace the whole path (query kept). */
  | { type: "ReplaceFullPath"; value: string }
  /** Gateway API prefix replacement: element-wise, trailing '/' rules of the spec. */
  | { type: "ReplacePrefixMatch"; value: string; matchedPrefix: string }
  /** Envoy prefix_rewrite (VirtualService rewrite.uri): the matched characters are swapped. */
  | { type: "ReplacePrefix"; value: string; matchedPrefix: string }
  /** VirtualService uriRegexRewrite: every match of `pattern` in the path replaced. */
  | { type: "RegexReplace"; pattern: RegExp; substitution: string };

export interface Rewrite {
  hostname?: string;
  path?: PathRewrite;
}

export interface Redirect {
  scheme?: "http" | "https";
  hostname?: string;
  port?: number;
  /** When `port` is unset: keep the request's port, or the scheme's default (omitted). */
  derivePort?: "FROM_REQUEST_PORT" | "FROM_PROTOCOL_DEFAULT";
  path?: PathRewrite;
  statusCode: number;
}

export interface Mirror {
  backend: { service: ServiceRef; host: string; port: number; subset?: string };
  /** 0-100, fractional. */
  percent: number;
}

export interface RetryPolicy {
  /** Retries after the first try (Envoy num_retries). */
  attempts: number;
  perTryTimeoutMs?: number;
  retryOn: readonly string[];
  retriableStatusCodes: readonly number[];
  backoffMs?: number;
  /** Envoy's previous_hosts predicate: try another endpoint on retry. */
  retryIgnorePreviousHosts: boolean;
}

export interface Fault {
  delay?: { ms: number; percent: number };
  abort?: { httpStatus?: number; grpcStatus?: string; percent: number };
}

export interface DirectResponse {
  status: number;
  body?: string;
  /** For logs and metrics: "route_not_found", "no_backends", "direct_response". */
  reason: string;
}

export interface RouteDecision {
  /** "HTTPRoute/ns/name#rule", "GRPCRoute/…#rule", "VirtualService/ns/name#http"; "none" when nothing matched. */
  route: string;
  kind: "HTTPRoute" | "GRPCRoute" | "VirtualService" | "none";
  backends: readonly RouteBackend[];
  invalidBackends: readonly InvalidBackend[];
  redirect?: Redirect;
  directResponse?: DirectResponse;
  requestHeaders?: HeaderModifier;
  responseHeaders?: HeaderModifier;
  rewrite?: Rewrite;
  mirrors: readonly Mirror[];
  timeouts?: { requestMs?: number; backendRequestMs?: number };
  /** Absent: no retries. */
  retries?: RetryPolicy;
  fault?: Fault;
}

export interface RouteRequest {
  /** "ns/name" */
  service: string;
  port: number;
  method: string;
  /** Raw request-target, query included. */
  path: string;
  /** Lower-case names. */
  headers: ReadonlyMap<string, readonly string[]>;
  /** Host / :authority; VirtualService authority matches use it (default: the headers' "host"). */
  authority?: string;
  /** Default "http" (the waypoint terminates HBONE and sees plaintext). */
  scheme?: string;
}

/** Gateway API condition reasons where one fits; problems are reported, never thrown. */
export type RouteProblemReason =
  | "BackendNotFound"
  | "InvalidKind"
  | "NoMatchingParent"
  | "UnsupportedValue"
  | "ConsumerRouteIgnored"
  | "OverriddenByGatewayAPI";

export interface RouteProblem {
  reason: RouteProblemReason;
  /** "HTTPRoute ns/name" */
  resource: string;
  /** Field path, e.g. spec.rules[0].backendRefs[1]. */
  path: string;
  message: string;
}
