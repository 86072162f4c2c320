// The effective traffic policy of one cluster (service host, port, optional subset) as the
// waypoint applies it, with Envoy/Istio defaults filled in. Pure: no I/O.
//
// Defaults (Istio's DestinationRule reference and Envoy's cluster/outlier protos):
// - load balancer: LEAST_REQUEST when unset or UNSPECIFIED (Istio's default); LEAST_CONN is
//   Istio's deprecated alias of LEAST_REQUEST.
// - consistent hash: RING_HASH unless maglev is set; ring minimum size 1024 (Envoy), Maglev table
//   65537 (Envoy).
// - connection pool: every limit 2^32-1 (Istio overrides Envoy's 1024), maxRequestsPerConnection
//   0 (unlimited), connectTimeout 10s, idle timeout 1h.
// - outlier detection: only when the policy sets it; consecutive5xxErrors 5, consecutive gateway
//   errors off (0), interval 10s, baseEjectionTime 30s, maxEjectionPercent 10, minHealthPercent
//   0 (panic mode off, Istio's choice); max ejection time 300s (Envoy). The deprecated
//   consecutiveErrors counts gateway errors only and turns consecutive 5xx off, as istiod does.
import { durationMs } from "../resources/common.js";
import type { TrafficPolicy } from "../resources/networking/destination-rule.js";

export const MAX_UINT32 = 4294967295;
export const DEFAULT_RING_SIZE = 1024;
export const MAX_RING_SIZE = 8 * 1024 * 1024;
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
export const DEFAULT_MAX_EJECTION_TIME_MS = 300_000;

export type HashKeySource =
  | { kind: "header"; name: string }
  | {
      kind: "cookie";
      name: string;
      path?: string;
      /** Cookie lifetime; set → Envoy generates the cookie when the request has none. */
      ttlMs?: number;
      attributes?: { name: string; value?: string }[];
    }
  | { kind: "sourceIp" }
  | { kind: "queryParameter"; name: string }
  /** consistentHash without a key: every request hashes to a random point. */
  | { kind: "none" };

export interface HashPolicy {
  key: HashKeySource;
  /** RING_HASH: minimum number of ring entries. */
  minimumRingSize: number;
  /** MAGLEV: lookup table size (a prime). */
  tableSize: number;
}

export type LbPolicy =
  | { kind: "ROUND_ROBIN" | "LEAST_REQUEST" | "RANDOM" | "PASSTHROUGH" }
  | { kind: "RING_HASH" | "MAGLEV"; hash: HashPolicy };

export interface ConnectionPoolPolicy {
  maxConnections: number;
  http1MaxPendingRequests: number;
  http2MaxRequests: number;
  /** 0: unlimited. */
  maxRequestsPerConnection: number;
  maxRetries: number;
  connectTimeoutMs: number;
  /** 0: no idle timeout. */
  idleTimeoutMs: number;
}

export interface OutlierPolicy {
  /** 0: off. */
  consecutive5xxErrors: number;
  /** 0: off. */
  consecutiveGatewayErrors: number;
  /** Local-origin failures counted apart from responses (splitExternalLocalOriginErrors). */
  splitExternalLocalOriginErrors: boolean;
  /** 0: off; only used when split. */
  consecutiveLocalOriginFailures: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

export type ClientTlsPolicy = NonNullable<TrafficPolicy["tls"]>;

export interface ClusterPolicy {
  lb: LbPolicy;
  connectionPool: ConnectionPoolPolicy;
  outlier: OutlierPolicy | null;
  /** The subset's labels: endpoints must carry all of them. Absent: no subset. */
  subsetLabels?: Record<string, string>;
  /** The named subset is not defined by the rule: the caller answers 503 (no cluster). */
  unknownSubset?: boolean;
  tls?: ClientTlsPolicy;
  /** "namespace/name" of the DestinationRule applied, if any. */
  rule?: string;
}

/** The four fields a port-level or subset policy can override. */
export interface PolicyFields {
  loadBalancer?: TrafficPolicy["loadBalancer"];
  connectionPool?: TrafficPolicy["connectionPool"];
  outlierDetection?: TrafficPolicy["outlierDetection"];
  tls?: TrafficPolicy["tls"];
}

export const DEFAULT_CONNECTION_POOL: Readonly<ConnectionPoolPolicy> = Object.freeze({
  maxConnections: MAX_UINT32,
  http1MaxPendingRequests: MAX_UINT32,
  http2MaxRequests: MAX_UINT32,
  maxRequestsPerConnection: 0,
  maxRetries: MAX_UINT32,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
});

export const DEFAULT_OUTLIER: Readonly<OutlierPolicy> = Object.freeze({
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: DEFAULT_MAX_EJECTION_TIME_MS,
  maxEjectionPercent: 10,
  minHealthPercent: 0,
});

/** Istio's LB when a rule sets none. */
export const DEFAULT_LB: LbPolicy = { kind: "LEAST_REQUEST" };

function hashKeyOf(
  h: NonNullable<NonNullable<TrafficPolicy["loadBalancer"]>["consistentHash"]>,
): HashKeySource {
  if (h.httpHeaderName !== undefined) return { kind: "header", name: h.httpHeaderName.toLowerCase() };
  if (h.httpCookie !== undefined) {
    const c = h.httpCookie;
    return {
      kind: "cookie",
      name: c.name,
      ...(c.path !== undefined ? { path: c.path } : {}),
      ...(c.ttl !== undefined ? { ttlMs: durationMs(c.ttl) } : {}),
      ...(c.attributes !== undefined ? { attributes: c.attributes } : {}),
    };
  }
  if (h.useSourceIp) return { kind: "sourceIp" };
  if (h.httpQueryParameterName !== undefined)
    return { kind: "queryParameter", name: h.httpQueryParameterName };
  return { kind: "none" };
}

export function lbPolicyOf(lb: TrafficPolicy["loadBalancer"]): LbPolicy {
  if (lb?.consistentHash) {
    const h = lb.consistentHash;
    const hash: HashPolicy = {
      key: hashKeyOf(h),
      minimumRingSize: Math.min(
        MAX_RING_SIZE,
        h.ringHash?.minimumRingSize || h.minimumRingSize || DEFAULT_RING_SIZE,
      ),
      tableSize: h.maglev?.tableSize || DEFAULT_MAGLEV_TABLE_SIZE,
    };
    return { kind: h.maglev ? "MAGLEV" : "RING_HASH", hash };
  }
  switch (lb?.simple) {
    case "ROUND_ROBIN":
      return { kind: "ROUND_ROBIN" };
    case "RANDOM":
      return { kind: "RANDOM" };
    case "PASSTHROUGH":
      return { kind: "PASSTHROUGH" };
    case "LEAST_CONN":
    case "LEAST_REQUEST":
    case "UNSPECIFIED":
    case undefined:
      return DEFAULT_LB;
  }
}

export function connectionPoolOf(cp: TrafficPolicy["connectionPool"]): ConnectionPoolPolicy {
  const out: ConnectionPoolPolicy = { ...DEFAULT_CONNECTION_POOL };
  const tcp = cp?.tcp;
  const http = cp?.http;
  // Istio: 0 means "use the default" for these counters.
  if (tcp?.maxConnections) out.maxConnections = tcp.maxConnections;
  if (tcp?.connectTimeout !== undefined) out.connectTimeoutMs = durationMs(tcp.connectTimeout);
  if (http?.http1MaxPendingRequests) out.http1MaxPendingRequests = http.http1MaxPendingRequests;
  if (http?.http2MaxRequests) out.http2MaxRequests = http.http2MaxRequests;
  if (http?.maxRequestsPerConnection) out.maxRequestsPerConnection = http.maxRequestsPerConnection;
  if (http?.maxRetries) out.maxRetries = http.maxRetries;
  // The HTTP idle timeout wins over the TCP one; "0s" turns it off.
  const idle = http?.idleTimeout ?? tcp?.idleTimeout;
  if (idle !== undefined) out.idleTimeoutMs = durationMs(idle);
  return out;
}

export function outlierPolicyOf(od: TrafficPolicy["outlierDetection"]): OutlierPolicy | null {
  if (!od) return null;
  const out: OutlierPolicy = { ...DEFAULT_OUTLIER };
  if (od.consecutiveErrors !== undefined && od.consecutiveErrors > 0) {
    // Deprecated field: istiod maps it to gateway failures and disables consecutive 5xx.
    out.consecutiveGatewayErrors = od.consecutiveErrors;
    out.consecutive5xxErrors = 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) out.consecutiveGatewayErrors = od.consecutiveGatewayErrors;
  if (od.consecutive5xxErrors !== undefined) out.consecutive5xxErrors = od.consecutive5xxErrors;
  if (od.splitExternalLocalOriginErrors) out.splitExternalLocalOriginErrors = true;
  if (od.consecutiveLocalOriginFailures !== undefined)
    out.consecutiveLocalOriginFailures = od.consecutiveLocalOriginFailures;
  if (od.interval !== undefined) out.intervalMs = durationMs(od.interval);
  if (od.baseEjectionTime !== undefined) out.baseEjectionTimeMs = durationMs(od.baseEjectionTime);
  if (od.maxEjectionPercent !== undefined) out.maxEjectionPercent = od.maxEjectionPercent;
  if (od.minHealthPercent !== undefined) out.minHealthPercent = od.minHealthPercent;
  // Envoy: the maximum ejection time is never below the base time.
  out.maxEjectionTimeMs = Math.max(out.maxEjectionTimeMs, out.baseEjectionTimeMs);
  return out;
}

/** The effective cluster policy of already-merged policy fields. */
export function clusterPolicyOf(fields: PolicyFields | undefined): ClusterPolicy {
  const policy: ClusterPolicy = {
    lb: lbPolicyOf(fields?.loadBalancer),
    connectionPool: connectionPoolOf(fields?.connectionPool),
    outlier: outlierPolicyOf(fields?.outlierDetection),
  };
  if (fields?.tls) policy.tls = fields.tls;
  return policy;
}

/** The policy with no DestinationRule at all. */
export function defaultClusterPolicy(): ClusterPolicy {
  return clusterPolicyOf(undefined);
}
