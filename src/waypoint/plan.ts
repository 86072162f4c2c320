// What the router is asked to do with a request once the filters let it through: the weighted
// backends, header changes, rewrites, timeouts, retries and mirrors of the chosen route, resolved
// against the mesh (Service names to Services). Built by `route-stage.ts` from the routing model.
import type { MeshService } from "../node/proxy/mesh.js";
import type { PortProtocol } from "./protocol.js";

export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface PlannedBackend {
  /** null when the route names a backend that does not exist (Gateway API: 500 for its share). */
  service: MeshService | null;
  /** The Service port to reach. */
  port: number;
  protocol: PortProtocol;
  weight: number;
  subset?: string | undefined;
  requestHeaders?: HeaderOps | undefined;
  responseHeaders?: HeaderOps | undefined;
  /** Why the backend is invalid, for the log. */
  invalid?: string | undefined;
}

export interface RetryPlan {
  /** Retries after the first attempt. */
  attempts: number;
  perTryTimeoutMs: number | null;
  retryOn: ReadonlySet<string>;
  retriableStatusCodes: ReadonlySet<number>;
}

export interface ForwardPlan {
  route: string | null;
  backend: PlannedBackend;
  /** The whole request, all attempts included; null = none (Istio's default). */
  timeoutMs: number | null;
  retry: RetryPlan;
  mirrors: { backend: PlannedBackend; percent: number }[];
  requestHeaders: HeaderOps | undefined;
  responseHeaders: HeaderOps | undefined;
  /** The authority and path to send upstream (after rewrites). */
  authority: string;
  path: string;
}

/** Istio's default retry policy for HTTP routes: 2 retries on connection-level failures and 503. */
export const DEFAULT_RETRY: RetryPlan = {
  attempts: 2,
  perTryTimeoutMs: null,
  retryOn: new Set([
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
  ]),
  retriableStatusCodes: new Set([503]),
};

export function applyHeaderOps(headers: Map<string, string[]>, ops: HeaderOps | undefined): void {
  if (!ops) return;
  for (const [k, v] of Object.entries(ops.set ?? {})) headers.set(k.toLowerCase(), [v]);
  for (const [k, v] of Object.entries(ops.add ?? {})) {
    const key = k.toLowerCase();
    const list = headers.get(key);
    if (list) list.push(v);
    else headers.set(key, [v]);
  }
  for (const k of ops.remove ?? []) headers.delete(k.toLowerCase());
}
