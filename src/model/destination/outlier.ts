// Passive outlier detection per cluster endpoint, following Envoy's consecutive-error detectors.
// Pure: time comes in as `now` (ms); nothing runs on its own.
//
// Outcomes: a 5xx counts toward consecutive 5xx; 502, 503, 504 (or `gatewayError`) also toward
// consecutive gateway errors, another 5xx resets the gateway count; anything else resets both.
// A local-origin failure (connect failure, reset, timeout) counts as a 503 — unless
// splitExternalLocalOriginErrors, when it counts only toward consecutive local-origin failures
// and a response of any status resets that count. When a count reaches its threshold (0 = that
// detector off) the endpoint is ejected, if allowed: Envoy always allows the first ejection in
// a cluster, and a further one only while the ejected share is below maxEjectionPercent.
// Ejection lasts baseEjectionTime × (times ejected), at most max(300s, baseEjectionTime); each
// interval spent healthy after an ejection lowers the multiplier by one. Envoy checks for expiry
// on its interval timer; here it is exact (at ejection end). healthy() drops ejected endpoints
// unless fewer than minHealthPercent would remain (panic: all endpoints are used).
import type { OutlierPolicy } from "./policy.js";

export interface Outcome {
  /** Response status from the upstream. */
  status?: number;
  /** The upstream failed as a gateway (counts as 502-504). */
  gatewayError?: boolean;
  /** Connect failure, reset or timeout: no response from the upstream. */
  localOriginFailure?: boolean;
}

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  /** Times ejected (the ejection-time multiplier). */
  ejections: number;
  ejectedUntil: number | null;
  /** When the multiplier last decayed (or the host came back). */
  healthySince: number;
}

interface ClusterState {
  policy: OutlierPolicy;
  hosts: Map<string, HostState>;
  /** The cluster's endpoints as last told (for the ejection cap). */
  endpoints: number | null;
}

export type EjectionReason = "consecutive5xx" | "consecutiveGateway" | "consecutiveLocalOrigin";

export interface RecordResult {
  ejected: boolean;
  reason?: EjectionReason;
  /** A threshold was reached but the ejection cap stopped it. */
  capped?: boolean;
}

function isGatewayStatus(s: number): boolean {
  return s === 502 || s === 503 || s === 504;
}

export class OutlierDetector {
  private readonly clusters = new Map<string, ClusterState>();

  /** Set a cluster's policy (null: no outlier detection, forget its state). */
  configure(cluster: string, policy: OutlierPolicy | null): void {
    if (!policy) {
      this.clusters.delete(cluster);
      return;
    }
    const existing = this.clusters.get(cluster);
    if (existing) existing.policy = policy;
    else this.clusters.set(cluster, { policy, hosts: new Map(), endpoints: null });
  }

  /** Tell the detector the cluster's current endpoints (forgets the state of removed ones). */
  setEndpoints(cluster: string, endpoints: readonly string[]): void {
    const c = this.clusters.get(cluster);
    if (!c) return;
    c.endpoints = endpoints.length;
    const keep = new Set(endpoints);
    for (const h of [...c.hosts.keys()]) if (!keep.has(h)) c.hosts.delete(h);
  }

  private host(c: ClusterState, endpoint: string, now: number): HostState {
    let h = c.hosts.get(endpoint);
    if (!h) {
      h = {
        consecutive5xx: 0,
        consecutiveGateway: 0,
        consecutiveLocal: 0,
        ejections: 0,
        ejectedUntil: null,
        healthySince: now,
      };
      c.hosts.set(endpoint, h);
    }
    this.advance(c.policy, h, now);
    return h;
  }

  /** Bring a host's state up to `now`: end an expired ejection, decay the multiplier. */
  private advance(p: OutlierPolicy, h: HostState, now: number): void {
    if (h.ejectedUntil !== null) {
      if (now < h.ejectedUntil) return;
      h.healthySince = h.ejectedUntil;
      h.ejectedUntil = null;
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      h.consecutiveLocal = 0;
    }
    if (h.ejections > 0 && p.intervalMs > 0) {
      const steps = Math.floor((now - h.healthySince) / p.intervalMs);
      if (steps > 0) {
        h.ejections = Math.max(0, h.ejections - steps);
        h.healthySince += steps * p.intervalMs;
      }
    }
  }

  private ejectedCount(c: ClusterState, now: number): number {
    let n = 0;
    for (const h of c.hosts.values()) {
      this.advance(c.policy, h, now);
      if (h.ejectedUntil !== null) n++;
    }
    return n;
  }

  /** Record the outcome of one request to an endpoint. */
  record(cluster: string, endpoint: string, outcome: Outcome, now: number): RecordResult {
    const c = this.clusters.get(cluster);
    if (!c) return { ejected: false };
    const p = c.policy;
    const h = this.host(c, endpoint, now);
    if (h.ejectedUntil !== null) return { ejected: false };

    let reason: EjectionReason | undefined;
    const local = outcome.localOriginFailure === true && outcome.status === undefined;
    if (local && p.splitExternalLocalOriginErrors) {
      h.consecutiveLocal++;
      if (p.consecutiveLocalOriginFailures > 0 && h.consecutiveLocal >= p.consecutiveLocalOriginFailures)
        reason = "consecutiveLocalOrigin";
    } else {
      if (p.splitExternalLocalOriginErrors) h.consecutiveLocal = 0;
      const status = local ? 503 : (outcome.status ?? (outcome.gatewayError ? 503 : 200));
      const gateway = outcome.gatewayError === true || isGatewayStatus(status);
      if (status >= 500 && status <= 599) {
        if (gateway) h.consecutiveGateway++;
        else h.consecutiveGateway = 0;
        h.consecutive5xx++;
        if (p.consecutiveGatewayErrors > 0 && h.consecutiveGateway >= p.consecutiveGatewayErrors)
          reason = "consecutiveGateway";
        else if (p.consecutive5xxErrors > 0 && h.consecutive5xx >= p.consecutive5xxErrors)
          reason = "consecutive5xx";
      } else {
        h.consecutive5xx = 0;
        h.consecutiveGateway = 0;
      }
    }
    if (!reason) return { ejected: false };

    const total = Math.max(c.endpoints ?? 0, c.hosts.size);
    const ejected = this.ejectedCount(c, now);
    const allowed = ejected === 0 || (total > 0 && (ejected * 100) / total < p.maxEjectionPercent);
    if (!allowed) return { ejected: false, reason, capped: true };
    h.ejections++;
    const duration = Math.min(p.baseEjectionTimeMs * h.ejections, p.maxEjectionTimeMs);
    h.ejectedUntil = now + duration;
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    h.consecutiveLocal = 0;
    return { ejected: true, reason };
  }

  isEjected(cluster: string, endpoint: string, now: number): boolean {
    const c = this.clusters.get(cluster);
    const h = c?.hosts.get(endpoint);
    if (!c || !h) return false;
    this.advance(c.policy, h, now);
    return h.ejectedUntil !== null;
  }

  /** When an ejected endpoint comes back, or null when it is not ejected. */
  ejectedUntil(cluster: string, endpoint: string, now: number): number | null {
    return this.isEjected(cluster, endpoint, now)
      ? (this.clusters.get(cluster)?.hosts.get(endpoint)?.ejectedUntil ?? null)
      : null;
  }

  /** Times an endpoint has been ejected, after decay (the next ejection's multiplier - 1). */
  ejectionCount(cluster: string, endpoint: string, now: number): number {
    const c = this.clusters.get(cluster);
    const h = c?.hosts.get(endpoint);
    if (!c || !h) return 0;
    this.advance(c.policy, h, now);
    return h.ejections;
  }

  /**
   * The endpoints to balance over: those not ejected; all of them when the healthy share falls
   * below minHealthPercent (Envoy's panic mode; minHealthPercent 0 never panics, so all ejected
   * gives none).
   */
  healthy(cluster: string, endpoints: readonly string[], now: number): readonly string[] {
    const c = this.clusters.get(cluster);
    if (!c) return endpoints;
    c.endpoints = endpoints.length;
    const ok = endpoints.filter((e) => !this.isEjected(cluster, e, now));
    if (ok.length === endpoints.length) return endpoints;
    const minHealth = c.policy.minHealthPercent;
    if (minHealth > 0 && (ok.length * 100) / endpoints.length < minHealth) return endpoints;
    return ok;
  }
}
