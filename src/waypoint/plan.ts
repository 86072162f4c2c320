// What the router is asked to do with a request once the filters let it through: the weighted
// backends, header changes, rewrites, timeouts, retries and mirrors of the chosen route, resolved
// against the mesh (Service names to Services). Built by `route-stage.ts` from the routing model.
import {
  applyHeaderModifier,
  defaultRetries,
  type HeaderModifier,
  type RetryPolicy,
} from "../model/routing/index.js";
import type { MeshService } from "../node/proxy/mesh.js";
import type { PortProtocol } from "./protocol.js";

/** Header edits (lower-case names), applied remove → set → add as Envoy does. */
export type HeaderOps = HeaderModifier;

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

/** Istio's default retry policy for HTTP routes (1.24+): 2 retries on connection-level failures. */
export const DEFAULT_RETRY: RetryPlan = retryPlan(defaultRetries());

export function retryPlan(p: RetryPolicy): RetryPlan {
  return {
    attempts: p.attempts,
    perTryTimeoutMs: p.perTryTimeoutMs ?? null,
    retryOn: new Set(p.retryOn),
    retriableStatusCodes: new Set(p.retriableStatusCodes),
  };
}

export const applyHeaderOps = applyHeaderModifier;
