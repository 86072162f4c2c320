// Envoy-style circuit breaking per cluster: requests in flight, requests waiting for a connection,
// retries in flight. Pure bookkeeping: the caller acquires before sending upstream and releases
// when the exchange ends.
//
// Model: of N requests in flight to a cluster, min(N, maxConnections) hold a connection and the
// rest are pending. A new request overflows when N + 1 would exceed http2MaxRequests (Envoy's
// max_requests, which bounds all requests), or when it would have to wait and the pending queue
// already holds http1MaxPendingRequests. A retry takes a retry slot (maxRetries, Envoy's
// max_retries: retries in flight) as well as a request slot. Overflow → the caller answers 503
// with response flag UO and body OVERFLOW_BODY.
import { DEFAULT_CONNECTION_POOL, type ConnectionPoolPolicy } from "./policy.js";

export const OVERFLOW_BODY =
  "upstream connect error or disconnect/reset before headers. reset reason: overflow";
export const OVERFLOW_FLAG = "UO";

export type Release = () => void;

export interface ClusterLoad {
  requests: number;
  /** Requests holding a connection. */
  active: number;
  /** Requests waiting for a connection. */
  pending: number;
  retries: number;
  /** Acquisitions refused so far. */
  overflows: number;
}

interface State {
  limits: ConnectionPoolPolicy;
  requests: number;
  retries: number;
  overflows: number;
}

export class ConnectionLimiter {
  private readonly clusters = new Map<string, State>();

  private state(cluster: string): State {
    let s = this.clusters.get(cluster);
    if (!s) {
      s = { limits: { ...DEFAULT_CONNECTION_POOL }, requests: 0, retries: 0, overflows: 0 };
      this.clusters.set(cluster, s);
    }
    return s;
  }

  /** Set (or change) a cluster's limits; requests in flight are kept. */
  configure(cluster: string, limits: ConnectionPoolPolicy): void {
    this.state(cluster).limits = { ...limits };
  }

  /** A release function, or null when the cluster's circuit breaker overflows. */
  tryAcquire(cluster: string, kind: "request" | "retry"): Release | null {
    const s = this.state(cluster);
    const l = s.limits;
    const n = s.requests + 1;
    const wouldPend = Math.max(0, n - l.maxConnections);
    if (n > l.http2MaxRequests || wouldPend > l.http1MaxPendingRequests) {
      s.overflows++;
      return null;
    }
    if (kind === "retry") {
      if (s.retries + 1 > l.maxRetries) {
        s.overflows++;
        return null;
      }
      s.retries++;
    }
    s.requests++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      s.requests--;
      if (kind === "retry") s.retries--;
    };
  }

  load(cluster: string): ClusterLoad {
    const s = this.clusters.get(cluster);
    if (!s) return { requests: 0, active: 0, pending: 0, retries: 0, overflows: 0 };
    const active = Math.min(s.requests, s.limits.maxConnections);
    return {
      requests: s.requests,
      active,
      pending: s.requests - active,
      retries: s.retries,
      overflows: s.overflows,
    };
  }

  /** Forget a cluster that is gone and has nothing in flight. */
  remove(cluster: string): void {
    const s = this.clusters.get(cluster);
    if (s && s.requests === 0) this.clusters.delete(cluster);
  }
}
