// compileRoutes: HTTPRoute, GRPCRoute and VirtualService resources → an immutable index of
// route entries per Service and port. Gateway API routes win: a Service with any attached
// HTTPRoute/GRPCRoute ignores VirtualServices (Istio calls mixing the two undefined).
import { compileGatewayRoutes } from "./compile-gateway.js";
import { compileVirtualServices } from "./compile-vs.js";
import { Problems, Services, type RouteEntry } from "./shared.js";
import type { RouteInput, RouteProblem } from "./types.js";

export interface ServiceRouting {
  source: "gateway-api" | "virtual-service";
  /** Entries in match order, per Service port; a port absent here has no route (default routing). */
  byPort: ReadonlyMap<number, readonly RouteEntry[]>;
}

export interface RouteIndex {
  /** Keyed "ns/name". */
  services: ReadonlyMap<string, ServiceRouting>;
  problems: readonly RouteProblem[];
}

export function compileRoutes(input: RouteInput): RouteIndex {
  const services = new Services(input.services, input.domain ?? "cluster.local");
  const problems = new Problems();
  const gateway = compileGatewayRoutes(
    input.httpRoutes,
    input.grpcRoutes,
    services,
    input.waypointNamespace,
    problems,
  );
  const vs = compileVirtualServices(input.virtualServices, services, input.waypointNamespace, problems);
  const out = new Map<string, ServiceRouting>();
  for (const [key, byPort] of gateway) out.set(key, { source: "gateway-api", byPort });
  for (const [key, slot] of vs) {
    if (out.has(key)) {
      for (const resource of slot.sources)
        problems.add(
          "OverriddenByGatewayAPI",
          resource,
          "spec.hosts",
          `Service ${key} has HTTPRoute/GRPCRoute attached; this VirtualService is ignored for it`,
        );
      continue;
    }
    out.set(key, { source: "virtual-service", byPort: slot.byPort });
  }
  return { services: out, problems: problems.list };
}
