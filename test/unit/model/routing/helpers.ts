// Helpers for routing tests: load route YAML through the project's loader (so schema defaults
// apply), a small fixed set of Services, and a request builder.
import { loadValid } from "../resources/helpers.js";
import type { GRPCRoute, HTTPRoute, VirtualService } from "../../../../src/model/resources/registry.js";
import { compileRoutes, type RouteIndex } from "../../../../src/model/routing/index.js";
import type { RouteRequest, ServiceInfo } from "../../../../src/model/routing/index.js";

export function svc(ns: string, name: string, ports: { port: number; name?: string }[]): ServiceInfo {
  return { namespace: ns, name, host: `${name}.${ns}.svc.cluster.local`, ports };
}

export const SERVICES: ServiceInfo[] = [
  svc("default", "reviews", [
    { port: 9080, name: "http" },
    { port: 9090, name: "admin" },
  ]),
  svc("default", "reviews-v1", [{ port: 9080, name: "http" }]),
  svc("default", "reviews-v2", [{ port: 9080, name: "http" }]),
  svc("default", "ratings", [{ port: 9080, name: "http" }]),
  svc("default", "echo", [{ port: 7070, name: "grpc" }]),
  svc("other", "shadow", [{ port: 80 }]),
];

export function compileYaml(
  yaml: string,
  opts: { waypointNamespace?: string; services?: ServiceInfo[] } = {},
): RouteIndex {
  const resources = loadValid(yaml);
  return compileRoutes({
    httpRoutes: resources.filter((r): r is HTTPRoute => r.kind === "HTTPRoute"),
    grpcRoutes: resources.filter((r): r is GRPCRoute => r.kind === "GRPCRoute"),
    virtualServices: resources.filter((r): r is VirtualService => r.kind === "VirtualService"),
    services: opts.services ?? SERVICES,
    waypointNamespace: opts.waypointNamespace,
  });
}

export function req(
  path: string,
  opts: {
    service?: string;
    port?: number;
    method?: string;
    headers?: Record<string, string | string[]>;
  } = {},
): RouteRequest {
  const headers = new Map<string, string[]>();
  for (const [k, v] of Object.entries(opts.headers ?? {})) headers.set(k, Array.isArray(v) ? v : [v]);
  return {
    service: opts.service ?? "default/reviews",
    port: opts.port ?? 9080,
    method: opts.method ?? "GET",
    path,
    headers,
  };
}

/** A seeded pseudo-random generator (mulberry32) for distribution tests. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
