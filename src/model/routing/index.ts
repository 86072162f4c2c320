// The waypoint's routing model (PURE): compile HTTPRoute / GRPCRoute / VirtualService into an
// index, select the route for a request, and the helpers the router applies the decision with.
//
// Semantics chosen (Istio waypoint, read from istiod's listener_waypoint.go and the Gateway API
// conversion): routes attach by parentRefs of group "" kind Service (port / sectionName narrow
// the port); only routes in the Service's namespace or the waypoint's own apply, the latter
// first ("consumer override"); other consumer routes are reported and ignored. HTTPRoute
// hostnames are ignored for Service parents. Rules of all attached routes are sorted by Gateway
// API precedence (exact > longest prefix > regex > method > headers > query; ties oldest, then
// ns/name, then rule order). VirtualServices apply only to Services with no HTTPRoute/GRPCRoute
// (Istio calls mixing undefined); several merge oldest first. No route attached → null (default
// forwarding); attached but unmatched → 404. Unset retries get Istio's default (2 attempts,
// connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes, no codes since
// Istio 1.24). Paths are matched as given: normalize them before selectRoute if wanted.
export { compileRoutes, type RouteIndex, type ServiceRouting } from "./compile.js";
export { selectRoute, ROUTE_NOT_FOUND } from "./select.js";
export { applyHeaderModifier } from "./headers.js";
export { rewritePath, redirectLocation } from "./rewrite.js";
export { pickBackend, shouldApply, type BackendPick } from "./pick.js";
export { resolveHost } from "./compile-vs.js";
export { DEFAULT_RETRY_ON, defaultRetries, type RouteEntry } from "./shared.js";
export type * from "./types.js";
