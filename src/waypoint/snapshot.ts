// The waypoint's view of its config, rebuilt on each push and immutable afterwards: the mesh's
// addresses (services by VIP, endpoints, identities), the user's L7 resources validated again with
// the shared model, and what was compiled from them once (policies, routes, upstream policy).
// A resource that does not validate is reported and left out; the others keep working.
import type { AnyResource, Service } from "../model/resources/registry.js";
import { compilePolicySet, type PolicySet } from "../model/authz/index.js";
import { compileRoutes, type RouteIndex } from "../model/routing/index.js";
import type { MeshService, MeshSnapshot } from "../node/proxy/mesh.js";
import { portProtocol, type PortProtocol } from "./protocol.js";

export interface GatewayRef {
  name: string;
  namespace: string;
}

export interface SnapshotInput {
  mesh: MeshSnapshot;
  resources: readonly AnyResource[];
  gateway: GatewayRef;
  trustDomain: string;
  rootNamespace: string;
  domain: string;
}

/** A Service port as the waypoint sees it. */
export interface ServicePortInfo {
  port: number;
  name: string | undefined;
  protocol: PortProtocol;
}

function ofKind<K extends AnyResource["kind"]>(
  rs: readonly AnyResource[],
  kind: K,
): Extract<AnyResource, { kind: K }>[] {
  return rs.filter((r): r is Extract<AnyResource, { kind: K }> => r.kind === kind);
}

export class WaypointSnapshot {
  readonly mesh: MeshSnapshot;
  readonly gateway: GatewayRef;
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly domain: string;
  readonly resources: readonly AnyResource[];
  readonly policies: PolicySet;
  /** HTTPRoute / GRPCRoute / VirtualService compiled for the Services this waypoint serves. */
  readonly routes: RouteIndex;
  /** "namespace/name" → the Service resource (ports' names and appProtocol live there). */
  private readonly services = new Map<string, Service>();

  constructor(input: SnapshotInput) {
    this.mesh = input.mesh;
    this.gateway = input.gateway;
    this.trustDomain = input.trustDomain;
    this.rootNamespace = input.rootNamespace;
    this.domain = input.domain;
    this.resources = input.resources;
    for (const s of ofKind(input.resources, "Service"))
      this.services.set(`${s.metadata.namespace ?? "default"}/${s.metadata.name}`, s);
    this.policies = compilePolicySet({
      authorizationPolicies: ofKind(input.resources, "AuthorizationPolicy"),
      rootNamespace: input.rootNamespace,
      trustDomain: input.trustDomain,
    });
    this.routes = compileRoutes({
      httpRoutes: ofKind(input.resources, "HTTPRoute"),
      grpcRoutes: ofKind(input.resources, "GRPCRoute"),
      virtualServices: ofKind(input.resources, "VirtualService"),
      services: [...this.services.values()].map((s) => {
        const namespace = s.metadata.namespace ?? "default";
        return {
          name: s.metadata.name,
          namespace,
          host: `${s.metadata.name}.${namespace}.svc.${input.domain}`,
          ports: (s.spec.ports ?? []).map((p) => ({
            port: p.port,
            name: p.name,
            appProtocol: p.appProtocol,
          })),
        };
      }),
      domain: input.domain,
      waypointNamespace: input.gateway.namespace,
    });
  }

  ofKind<K extends AnyResource["kind"]>(kind: K): Extract<AnyResource, { kind: K }>[] {
    return ofKind(this.resources, kind);
  }

  /** The Service at a VIP. */
  serviceAt(ip: string): MeshService | undefined {
    return this.mesh.serviceAt(ip);
  }

  /** The Service by namespace and name. */
  serviceNamed(namespace: string, name: string): MeshService | undefined {
    return this.mesh.serviceByHost(namespace, `${name}.${namespace}.svc.${this.domain}`);
  }

  /** How a Service port is spoken; "tcp" for a port the Service resource does not declare. */
  portInfo(svc: MeshService, port: number): ServicePortInfo {
    const res = this.services.get(`${svc.namespace}/${svc.name}`);
    const p = res?.spec.ports?.find((x) => x.port === port);
    return { port, name: p?.name, protocol: p ? portProtocol(p) : "tcp" };
  }

  /** The Service resource's labels (for route and policy attachment). */
  serviceResource(namespace: string, name: string): Service | undefined {
    return this.services.get(`${namespace}/${name}`);
  }
}
