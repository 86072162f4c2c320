// From a request to a plan: which route of the attached HTTPRoutes / GRPCRoutes / VirtualService
// applies, resolved against the mesh into a ForwardPlan for the router, or a reply the waypoint
// gives itself (redirect, direct response, 404 when routes are attached and none matches, the
// share of an invalid backend). Without a route the request goes to the Service it was addressed
// to, with Istio's default retry policy. Pure apart from the injected randomness.
import {
  pickBackend,
  redirectLocation,
  rewritePath,
  selectRoute,
  type Fault,
  type RouteBackend,
  type RouteDecision,
  type ServiceRef,
} from "../model/routing/index.js";
import type { MeshService } from "../node/proxy/mesh.js";
import type { LocalReply } from "./local-reply.js";
import { DEFAULT_RETRY, retryPlan, type ForwardPlan, type PlannedBackend, type RetryPlan } from "./plan.js";
import type { PortProtocol } from "./protocol.js";
import type { WaypointRequest } from "./filters/types.js";
import type { WaypointSnapshot } from "./snapshot.js";

export interface FaultPlan {
  delay?: { ms: number; percent: number } | undefined;
  abort?: { httpStatus?: number | undefined; grpcStatus?: number | undefined; percent: number } | undefined;
}

export type PlanResult =
  | { kind: "forward"; plan: ForwardPlan; fault: FaultPlan | null }
  | { kind: "reply"; reply: LocalReply; flag: string; route: string | null };

export interface Addressed {
  service: MeshService;
  port: number;
  protocol: PortProtocol;
}

/** The plan for a request no route claims: the addressed Service itself. */
export function defaultPlan(to: Addressed, req: WaypointRequest): ForwardPlan {
  return {
    route: null,
    backend: { service: to.service, port: to.port, protocol: to.protocol, weight: 1 },
    timeoutMs: null,
    retry: DEFAULT_RETRY,
    mirrors: [],
    requestHeaders: undefined,
    responseHeaders: undefined,
    authority: req.authority,
    path: req.path,
  };
}

export type Planner = (snapshot: WaypointSnapshot, req: WaypointRequest, to: Addressed) => PlanResult;

export const defaultPlanner: Planner = (_snapshot, req, to) => ({
  kind: "forward",
  plan: defaultPlan(to, req),
  fault: null,
});

const NO_RETRY: RetryPlan = {
  attempts: 0,
  perTryTimeoutMs: null,
  retryOn: new Set(),
  retriableStatusCodes: new Set(),
};

/** gRPC status names as VirtualService fault aborts spell them (or a number). */
const GRPC_CODES: Record<string, number> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

function faultPlan(f: Fault | undefined): FaultPlan | null {
  if (!f) return null;
  const out: FaultPlan = {};
  if (f.delay) out.delay = f.delay;
  if (f.abort) {
    const g = f.abort.grpcStatus;
    const code =
      g === undefined ? undefined : (GRPC_CODES[g.toUpperCase()] ?? (/^\d+$/.test(g) ? Number(g) : 2));
    out.abort = { httpStatus: f.abort.httpStatus, grpcStatus: code, percent: f.abort.percent };
  }
  return out.delay || out.abort ? out : null;
}

function planned(
  snap: WaypointSnapshot,
  b: { service: ServiceRef; port: number; subset?: string | undefined },
  weight: number,
  extra?: RouteBackend,
): PlannedBackend {
  const service = snap.serviceNamed(b.service.namespace, b.service.name) ?? null;
  return {
    service,
    port: b.port,
    protocol: service ? snap.portInfo(service, b.port).protocol : "tcp",
    weight,
    subset: b.subset,
    requestHeaders: extra?.requestHeaders,
    responseHeaders: extra?.responseHeaders,
    ...(service
      ? {}
      : { invalid: `backend ${b.service.namespace}/${b.service.name} has no endpoints in the mesh` }),
  };
}

function retryOf(d: RouteDecision): RetryPlan {
  if (!d.retries) return NO_RETRY;
  const plan = retryPlan(d.retries);
  // Gateway API's backendRequest timeout is the per-try timeout when no retry policy sets one.
  if (plan.perTryTimeoutMs === null && d.timeouts?.backendRequestMs !== undefined)
    return { ...plan, perTryTimeoutMs: d.timeouts.backendRequestMs };
  return plan;
}

/** A planner over the routing model, the snapshot's compiled routes and `random` for weights. */
export function routingPlanner(random: () => number = Math.random): Planner {
  return (snap, req, to) => {
    const decision = selectRoute(snap.routes, {
      service: `${to.service.namespace}/${to.service.name}`,
      port: to.port,
      method: req.method,
      path: req.path,
      headers: req.headers,
      authority: req.authority,
    });
    if (!decision) return defaultPlanner(snap, req, to);
    const route = decision.route === "none" ? null : decision.route;
    if (decision.directResponse) {
      const d = decision.directResponse;
      return {
        kind: "reply",
        reply: { status: d.status, body: d.body ?? (d.status === 404 ? "" : d.reason) },
        flag: d.reason === "route_not_found" ? "NR" : "",
        route,
      };
    }
    if (decision.redirect) {
      const location = redirectLocation(req, decision.redirect, { scheme: "http", authority: req.authority });
      return {
        kind: "reply",
        reply: { status: decision.redirect.statusCode, body: "", headers: { location } },
        flag: "",
        route,
      };
    }
    const pick = pickBackend(decision, random);
    if (!("backend" in pick))
      return { kind: "reply", reply: { status: pick.status, body: pick.reason }, flag: "NR", route };
    const b = pick.backend;
    const authority = decision.rewrite?.hostname ?? b.hostRewrite ?? req.authority;
    const plan: ForwardPlan = {
      route,
      backend: planned(snap, b, b.weight, b),
      timeoutMs: decision.timeouts?.requestMs ?? null,
      retry: retryOf(decision),
      mirrors: decision.mirrors.map((m) => ({ backend: planned(snap, m.backend, 1), percent: m.percent })),
      requestHeaders: decision.requestHeaders,
      responseHeaders: decision.responseHeaders,
      authority,
      path: rewritePath(req.path, decision.rewrite?.path),
    };
    return { kind: "forward", plan, fault: faultPlan(decision.fault) };
  };
}
