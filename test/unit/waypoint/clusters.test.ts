// The waypoint's clusters (src/waypoint/cluster.ts) over real snapshots: policy from the
// DestinationRule seen from the waypoint's namespace, subsets by Pod labels, circuit breakers
// (503 UO, TCP connection limit, slots given back), outlier ejection kept across pushes that
// leave the rule alone and reset when it changes, clusters dropped with their Service, hash keys
// from cookies (generated Set-Cookie) and query parameters.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry } from "prom-client";
import type { Address } from "../../../src/api/xds-types.js";
import { silentLogger } from "../../../src/core/log.js";
import { MeshSnapshot } from "../../../src/node/proxy/mesh.js";
import { Clusters } from "../../../src/waypoint/cluster.js";
import type { PlannedBackend } from "../../../src/waypoint/plan.js";
import { WaypointSnapshot } from "../../../src/waypoint/snapshot.js";
import { loadValid } from "../model/resources/helpers.js";
import { seeded } from "../model/destination/helpers.js";

const ip = (s: string): Uint8Array => Uint8Array.from(s.split(".").map(Number));
const HOST = "api.shop.svc.cluster.local";

function workload(name: string, addr: string): Address {
  return {
    workload: {
      uid: `Kubernetes//Pod/shop/${name}`,
      name,
      namespace: "shop",
      addresses: [ip(addr)],
      serviceAccount: "api",
      trustDomain: "cluster.local",
      node: "n2",
      tunnelProtocol: "HBONE",
      status: "HEALTHY",
      services: { [`shop/${HOST}`]: { ports: [{ servicePort: 80, targetPort: 8080 }] } },
    },
  };
}

const SERVICE: Address = {
  service: {
    name: "api",
    namespace: "shop",
    hostname: HOST,
    addresses: [{ network: "", address: ip("10.96.0.10") }],
    ports: [{ servicePort: 80, targetPort: 8080 }],
  },
};

const PODS = `
apiVersion: v1
kind: Pod
metadata: { name: api-1, namespace: shop, labels: { app: api, version: v1 } }
spec: { nodeName: n2 }
---
apiVersion: v1
kind: Pod
metadata: { name: api-2, namespace: shop, labels: { app: api, version: v2 } }
spec: { nodeName: n2 }
---
apiVersion: v1
kind: Pod
metadata: { name: api-3, namespace: shop, labels: { app: api, version: v2 } }
spec: { nodeName: n2 }
`;

function snapshot(yaml: string, withService = true): WaypointSnapshot {
  const addresses = [
    workload("api-1", "10.244.2.1"),
    workload("api-2", "10.244.2.2"),
    workload("api-3", "10.244.2.3"),
    ...(withService ? [SERVICE] : []),
  ];
  return new WaypointSnapshot({
    mesh: new MeshSnapshot({
      addresses,
      authorizations: [],
      revocations: undefined,
      rootNamespace: "istio-system",
    }),
    resources: loadValid(`${PODS}---\n${yaml}`),
    gateway: { name: "waypoint", namespace: "shop" },
    trustDomain: "cluster.local",
    rootNamespace: "istio-system",
    domain: "cluster.local",
  });
}

function harness(yaml: string): {
  clusters: Clusters;
  push(yaml: string, withService?: boolean): void;
  clock: { now: number };
  backend(subset?: string, protocol?: PlannedBackend["protocol"]): PlannedBackend;
} {
  let snap = snapshot(yaml);
  const clock = { now: 1_000_000 };
  const clusters = new Clusters(() => snap, {
    registry: new Registry(),
    log: silentLogger(),
    now: () => clock.now,
    random: seeded(7),
  });
  return {
    clusters,
    clock,
    push: (y, withService = true) => {
      snap = snapshot(y, withService);
      clusters.sync();
    },
    backend: (subset, protocol = "http") => {
      const service = snap.serviceNamed("shop", "api");
      assert.ok(service);
      return { service, port: 80, protocol, weight: 1, subset };
    },
  };
}

const ctx = (headers: Record<string, string> = {}, path = "/", exclude: string[] = []) => ({
  headers: new Map(Object.entries(headers).map(([k, v]) => [k, [v]])),
  sourceIp: "10.244.1.5",
  exclude: new Set(exclude),
  path,
});

interface Dumped {
  name: string;
  destinationRule: string | null;
  policy: { lb: { kind: string } };
  load: { requests: number };
  endpoints: { workload: string; ejected: boolean; inFlight: number }[];
}

const dump = (c: Clusters): Dumped[] => c.dump() as Dumped[];

function pick(c: Clusters, b: PlannedBackend, h?: Record<string, string>, path?: string): string {
  const r = c.choose(b, ctx(h, path));
  assert.ok(r.ok, JSON.stringify(r));
  c.started(b, r.key)({ status: 200 });
  return r.endpoint.workload.name;
}

const OUTLIER = (base: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: { consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: ${base}, maxEjectionPercent: 50 }
`;

describe("waypoint clusters", () => {
  test("without a DestinationRule: Istio's LEAST_REQUEST over every ready endpoint", () => {
    const h = harness("");
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(pick(h.clusters, h.backend()));
    assert.deepEqual([...seen].sort(), ["api-1", "api-2", "api-3"]);
    const [d] = dump(h.clusters);
    assert.equal(d?.name, `outbound|80||${HOST}`);
    assert.equal(d?.destinationRule, null);
    assert.equal(d?.policy.lb.kind, "LEAST_REQUEST");
  });

  test("outlier ejection: skipped while ejected, kept across a push that leaves the rule alone, reset when it changes", () => {
    const h = harness(OUTLIER("30s"));
    const b = h.backend();
    // Fail api-2 twice (round robin: every third pick).
    let failures = 0;
    for (let i = 0; i < 9 && failures < 2; i++) {
      const r = h.clusters.choose(b, ctx());
      assert.ok(r.ok);
      const bad = r.endpoint.workload.name === "api-2";
      h.clusters.started(b, r.key)({ status: bad ? 503 : 200 });
      if (bad) failures++;
    }
    const ejected = (): string[] =>
      (dump(h.clusters)[0]?.endpoints ?? []).filter((e) => e.ejected).map((e) => e.workload);
    assert.deepEqual(ejected(), ["shop/api-2"]);
    for (let i = 0; i < 12; i++) assert.notEqual(pick(h.clusters, b), "api-2");

    h.push(`${OUTLIER("30s")}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: other, namespace: shop }
spec: { host: other.shop.svc.cluster.local }
`);
    assert.deepEqual(ejected(), ["shop/api-2"], "an unrelated push reset the ejection");

    h.clock.now += 31_000;
    assert.deepEqual(ejected(), [], "back after baseEjectionTime");

    // Eject again, then change the rule: the new cluster starts clean.
    for (let i = 0; i < 9; i++) {
      const r = h.clusters.choose(b, ctx());
      assert.ok(r.ok);
      h.clusters.started(b, r.key)({ status: r.endpoint.workload.name === "api-3" ? 500 : 200 });
    }
    assert.deepEqual(ejected(), ["shop/api-3"]);
    h.push(OUTLIER("20s"));
    assert.deepEqual(ejected(), []);
  });

  test("a cluster whose Service goes away is dropped", () => {
    const h = harness(OUTLIER("30s"));
    pick(h.clusters, h.backend());
    assert.equal(dump(h.clusters).length, 1);
    h.push(OUTLIER("30s"), false);
    assert.equal(dump(h.clusters).length, 0);
  });

  test("circuit breakers: excess requests get 503 UO with Envoy's body; slots come back when attempts end or are never started", async () => {
    const h = harness(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } }
`);
    const b = h.backend();
    const first = h.clusters.choose(b, ctx());
    const second = h.clusters.choose(b, ctx());
    assert.ok(first.ok && second.ok);
    const end1 = h.clusters.started(b, first.key);
    const end2 = h.clusters.started(b, second.key);
    const third = h.clusters.choose(b, ctx());
    assert.ok(!third.ok);
    assert.equal(third.flag, "UO");
    assert.equal(third.reply.status, 503);
    assert.equal(
      third.reply.body,
      "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    );
    assert.equal(third.reply.headers?.["x-envoy-overloaded"], "true");
    end1({ status: 200 });
    end2({ failure: "reset" });
    assert.equal(dump(h.clusters)[0]?.load.requests, 0);

    // A choice that is never started (a mirror refused its body) gives its slot back.
    assert.ok(h.clusters.choose(b, ctx()).ok);
    assert.ok(h.clusters.choose(b, ctx()).ok);
    await Promise.resolve();
    assert.equal(dump(h.clusters)[0]?.load.requests, 0);
  });

  test("an HTTP/2 upstream multiplexes: only http2MaxRequests bounds it", () => {
    const h = harness(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, http2MaxRequests: 3 } }
`);
    const b = h.backend(undefined, "grpc");
    for (let i = 0; i < 3; i++) {
      const r = h.clusters.choose(b, ctx());
      assert.ok(r.ok, `request ${i + 1}`);
      h.clusters.started(b, r.key);
    }
    const fourth = h.clusters.choose(b, ctx());
    assert.ok(!fourth.ok && fourth.flag === "UO");
  });

  test("a TCP service's cluster counts connections against tcp.maxConnections", () => {
    const h = harness(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec: { host: api, trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 } } } }
`);
    const b = h.backend(undefined, "tcp");
    const a = h.clusters.choose(b, ctx());
    assert.ok(a.ok);
    const end = h.clusters.started(b, a.key);
    const refused = h.clusters.choose(b, ctx());
    assert.ok(!refused.ok && refused.flag === "UO");
    end({});
    assert.ok(h.clusters.choose(b, ctx()).ok);
  });

  test("subsets: endpoints narrowed by Pod labels; a subset no rule defines is 503 NC", () => {
    const h = harness(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`);
    const v2 = new Set<string>();
    for (let i = 0; i < 20; i++) v2.add(pick(h.clusters, h.backend("v2")));
    assert.deepEqual([...v2].sort(), ["api-2", "api-3"]);
    assert.equal(pick(h.clusters, h.backend("v1")), "api-1");
    const nc = h.clusters.choose(h.backend("v9"), ctx());
    assert.ok(!nc.ok);
    assert.equal(nc.flag, "NC");
    assert.equal(nc.reply.status, 503);
  });

  test("a DestinationRule in another namespace not exported to the waypoint's does not apply", () => {
    const h = harness(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: elsewhere }
spec: { host: ${HOST}, exportTo: ["."], trafficPolicy: { loadBalancer: { simple: RANDOM } } }
`);
    pick(h.clusters, h.backend());
    assert.equal(dump(h.clusters)[0]?.policy.lb.kind, "LEAST_REQUEST");
  });

  test("consistent hash: a cookie with a ttl is generated (Set-Cookie) and then sticks; a query parameter keys too", () => {
    const h = harness(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: sticky, ttl: 30s } } } }
`);
    const b = h.backend();
    const first = h.clusters.choose(b, ctx());
    assert.ok(first.ok);
    const setCookie = first.responseHeaders?.["set-cookie"] ?? "";
    assert.match(setCookie, /^sticky="[0-9a-f]{16}"; Max-Age=30; HttpOnly$/);
    const cookie = setCookie.split(";")[0] ?? "";
    for (let i = 0; i < 10; i++) {
      const r = h.clusters.choose(b, ctx({ cookie }));
      assert.ok(r.ok);
      assert.equal(r.responseHeaders, undefined);
      assert.equal(r.endpoint.workload.name, first.endpoint.workload.name);
    }

    h.push(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy: { loadBalancer: { consistentHash: { httpQueryParameterName: user } } }
`);
    const byUser = (u: string): Set<string> => {
      const s = new Set<string>();
      for (let i = 0; i < 10; i++) s.add(pick(h.clusters, b, {}, `/x?user=${u}&i=${i}`));
      return s;
    };
    assert.equal(byUser("ann").size, 1);
    const all = new Set<string>();
    for (let u = 0; u < 20; u++) for (const e of byUser(`u${u}`)) all.add(e);
    assert.ok(all.size >= 2);
  });

  test("a retry avoids the endpoint already tried", () => {
    const h = harness(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec: { host: api, trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } } }
`);
    const b = h.backend();
    const first = h.clusters.choose(b, ctx({ "x-user": "bob" }));
    assert.ok(first.ok);
    h.clusters.started(b, first.key)({ failure: "connect-failure" });
    const retry = h.clusters.choose(b, ctx({ "x-user": "bob" }, "/", [first.key]));
    assert.ok(retry.ok);
    assert.notEqual(retry.key, first.key);
  });
});
