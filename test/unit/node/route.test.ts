// Outbound routing on the node proxy: service VIPs pick healthy endpoints round robin with the
// target port, locality preferences (STRICT / FAILOVER) narrow the choice, waypoints are used
// when present, out-of-mesh destinations pass through.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Address, LoadBalancing } from "../../../src/api/xds-types.js";
import { MeshSnapshot } from "../../../src/node/proxy/mesh.js";
import { Balancer, resolveRoute } from "../../../src/node/proxy/route.js";

const ip = (s: string): Uint8Array => Uint8Array.from(s.split(".").map(Number));

function workload(
  name: string,
  addr: string,
  opts: { node?: string; zone?: string; healthy?: boolean; hbone?: boolean; waypoint?: string } = {},
): Address {
  return {
    workload: {
      uid: `Kubernetes//Pod/shop/${name}`,
      name,
      namespace: "shop",
      addresses: [ip(addr)],
      serviceAccount: name.split("-")[0] ?? name,
      trustDomain: "cluster.local",
      node: opts.node ?? "n1",
      tunnelProtocol: opts.hbone === false ? "NONE" : "HBONE",
      status: opts.healthy === false ? "UNHEALTHY" : "HEALTHY",
      locality: { region: "r", zone: opts.zone ?? "z1" },
      services: { "shop/api.shop.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 8080 }] } },
      ...(opts.waypoint
        ? { waypoint: { address: { address: ip(opts.waypoint) }, hboneMtlsPort: 15008 } }
        : {}),
    },
  };
}

function service(lb?: LoadBalancing, waypoint?: string): Address {
  return {
    service: {
      name: "api",
      namespace: "shop",
      hostname: "api.shop.svc.cluster.local",
      addresses: [{ network: "", address: ip("10.96.0.10") }],
      ports: [{ servicePort: 80, targetPort: 8080 }],
      ...(lb ? { loadBalancing: lb } : {}),
      ...(waypoint ? { waypoint: { address: { address: ip(waypoint) }, hboneMtlsPort: 15008 } } : {}),
    },
  };
}

function mesh(addresses: Address[]): MeshSnapshot {
  return new MeshSnapshot({
    addresses,
    authorizations: [],
    revocations: undefined,
    rootNamespace: "istio-system",
  });
}

const client: Address = {
  workload: {
    uid: "Kubernetes//Pod/shop/client-1",
    name: "client-1",
    namespace: "shop",
    addresses: [ip("10.244.1.5")],
    serviceAccount: "client",
    node: "n1",
    tunnelProtocol: "HBONE",
    locality: { region: "r", zone: "z1" },
  },
};

describe("outbound routing", () => {
  test("a service VIP round-robins over healthy endpoints with the target port and expected identity", () => {
    const m = mesh([
      client,
      service(),
      workload("api-a", "10.244.1.10"),
      workload("api-b", "10.244.2.10"),
      workload("api-c", "10.244.2.11", { healthy: false }),
    ]);
    const src = m.workloads.get("Kubernetes//Pod/shop/client-1");
    assert.ok(src);
    const b = new Balancer();
    const picks = [0, 1, 2, 3].map(() => resolveRoute(m, src, { ip: "10.96.0.10", port: 80 }, b));
    const tunnels = picks.map((r) => (r.kind === "hbone" ? `${r.authority.ip}:${r.authority.port}` : r.kind));
    assert.deepEqual(tunnels, [
      "10.244.1.10:8080",
      "10.244.2.10:8080",
      "10.244.1.10:8080",
      "10.244.2.10:8080",
    ]);
    const first = picks[0];
    assert.ok(first?.kind === "hbone");
    assert.equal(first.tunnel.port, 15008);
    assert.equal(first.expectedIdentity, "spiffe://cluster.local/ns/shop/sa/api");
  });

  test("an unknown port or no healthy endpoint refuses; an address outside the mesh passes through", () => {
    const m = mesh([client, service(), workload("api-c", "10.244.2.11", { healthy: false })]);
    const src = m.workloads.get("Kubernetes//Pod/shop/client-1");
    assert.ok(src);
    const b = new Balancer();
    assert.equal(resolveRoute(m, src, { ip: "10.96.0.10", port: 81 }, b).kind, "refuse");
    assert.equal(resolveRoute(m, src, { ip: "10.96.0.10", port: 80 }, b).kind, "refuse");
    const out = resolveRoute(m, src, { ip: "192.0.2.1", port: 443 }, b);
    assert.deepEqual(out.kind === "passthrough" ? out.target : out, { ip: "192.0.2.1", port: 443 });
  });

  test("ALLOW_ALL health policy includes unhealthy endpoints", () => {
    const m = mesh([
      client,
      service({ healthPolicy: "ALLOW_ALL" }),
      workload("api-c", "10.244.2.11", { healthy: false }),
    ]);
    const src = m.workloads.get("Kubernetes//Pod/shop/client-1");
    assert.ok(src);
    assert.equal(resolveRoute(m, src, { ip: "10.96.0.10", port: 80 }, new Balancer()).kind, "hbone");
  });

  test("locality preferences: FAILOVER prefers the closest endpoints, STRICT allows only matching ones", () => {
    const eps = [
      workload("api-a", "10.244.1.10", { zone: "z1" }),
      workload("api-b", "10.244.2.10", { zone: "z2" }),
    ];
    const failover = mesh([
      client,
      service({ routingPreference: ["REGION", "ZONE"], mode: "FAILOVER" }),
      ...eps,
    ]);
    const src = failover.workloads.get("Kubernetes//Pod/shop/client-1");
    assert.ok(src);
    const b = new Balancer();
    for (let i = 0; i < 3; i++) {
      const r = resolveRoute(failover, src, { ip: "10.96.0.10", port: 80 }, b);
      assert.equal(r.kind === "hbone" ? r.authority.ip : r.kind, "10.244.1.10");
    }
    const strict = mesh([
      client,
      service({ routingPreference: ["NODE"], mode: "STRICT" }),
      workload("api-b", "10.244.2.10", { node: "n2" }),
    ]);
    const src2 = strict.workloads.get("Kubernetes//Pod/shop/client-1");
    assert.ok(src2);
    assert.equal(resolveRoute(strict, src2, { ip: "10.96.0.10", port: 80 }, new Balancer()).kind, "refuse");
  });

  test("a service with a waypoint sends traffic to the waypoint with the original destination as authority", () => {
    const wp: Address = {
      workload: {
        uid: "Kubernetes//Pod/shop/waypoint-1",
        name: "waypoint-1",
        namespace: "shop",
        addresses: [ip("10.244.3.3")],
        serviceAccount: "waypoint",
        node: "n2",
        tunnelProtocol: "HBONE",
      },
    };
    const m = mesh([client, wp, service(undefined, "10.244.3.3"), workload("api-a", "10.244.1.10")]);
    const src = m.workloads.get("Kubernetes//Pod/shop/client-1");
    assert.ok(src);
    const r = resolveRoute(m, src, { ip: "10.96.0.10", port: 80 }, new Balancer());
    assert.ok(r.kind === "hbone");
    assert.equal(r.viaWaypoint, true);
    assert.deepEqual(r.tunnel, { ip: "10.244.3.3", port: 15008 });
    assert.deepEqual(r.authority, { ip: "10.96.0.10", port: 80 });
    assert.equal(r.expectedIdentity, "spiffe://cluster.local/ns/shop/sa/waypoint");
    // The waypoint itself goes straight to an endpoint.
    const self = m.workloads.get("Kubernetes//Pod/shop/waypoint-1");
    assert.ok(self);
    const direct = resolveRoute(m, self, { ip: "10.96.0.10", port: 80 }, new Balancer());
    assert.ok(direct.kind === "hbone" && !direct.viaWaypoint);
  });

  test("a workload outside the mesh is reached in plain TCP", () => {
    const m = mesh([client, workload("legacy-1", "10.244.9.9", { hbone: false })]);
    const src = m.workloads.get("Kubernetes//Pod/shop/client-1");
    assert.ok(src);
    assert.equal(resolveRoute(m, src, { ip: "10.244.9.9", port: 80 }, new Balancer()).kind, "passthrough");
  });
});
