// The waypoint's routing model (PURE): compile HTTPRoute / GRPCRoute / VirtualService into an
// index, select the route for a request, and the helpers the router applies the decision with.
export { compileRoutes, type RouteIndex, type ServiceRouting } from "./compile.js";
export { selectRoute, ROUTE_NOT_FOUND } from "./select.js";
export { applyHeaderModifier } from "./headers.js";
export { rewritePath, redirectLocation } from "./rewrite.js";
export { pickBackend, shouldApply, type BackendPick } from "./pick.js";
export { resolveHost } from "./compile-vs.js";
export { DEFAULT_RETRY_ON, type RouteEntry } from "./shared.js";
export type * from "./types.js";
