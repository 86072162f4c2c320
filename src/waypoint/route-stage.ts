// From a request to a plan: which route of the attached HTTPRoutes / GRPCRoutes / VirtualService
// applies, resolved against the mesh into a ForwardPlan for the router, or a reply the waypoint
// gives itself (redirect, direct response). Without a route the request goes to the Service it
// was addressed to, with Istio's default retry policy.
import type { MeshService } from "../node/proxy/mesh.js";
import type { LocalReply } from "./local-reply.js";
import { DEFAULT_RETRY, type ForwardPlan } from "./plan.js";
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
