// The filters the waypoint compiles from each config snapshot: routing (HTTPRoute, GRPCRoute,
// VirtualService), JWT (RequestAuthentication) and CUSTOM authorization (ext_authz providers from
// the istio ConfigMap's MeshConfig).
import type { Logger } from "../core/log.js";
import { AuthStage } from "./auth-stage.js";
import { routingPlanner } from "./route-stage.js";
import type { WaypointExtensions } from "./waypoint.js";

export function waypointExtensions(log: Logger): WaypointExtensions {
  const planner = routingPlanner();
  const auth = new AuthStage(log);
  return {
    init: (ctx) => auth.init(ctx),
    planner: () => planner,
    filters: (snapshot) => auth.compile(snapshot),
    close: () => auth.close(),
  };
}
