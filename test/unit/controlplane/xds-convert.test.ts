// Conversion of bookinfo-like manifests into the ambient xDS resources istiod would send ztunnel,
// each encoded to google.protobuf.Any and decoded back through the .proto files.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { adsServiceClient, loadProtos } from "../../../src/api/protos.js";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  decodeAny,
  encodeAny,
  REVOCATION_LIST_TYPE_URL,
  type Address,
  type Authorization,
  anyTypeUrl,
  type DeltaDiscoveryRequestMessage,
  type DeltaDiscoveryResponseMessage,
  type RevocationListMessage,
} from "../../../src/api/xds-types.js";
import { buildSnapshot, resourceVersion, type Snapshot } from "../../../src/controlplane/xds/convert.js";
import { loadTexts } from "../../../src/model/resources/load.js";

const MANIFESTS = `
apiVersion: v1
kind: Namespace
metadata:
  name: bookinfo
  labels:
    istio.io/dataplane-mode: ambient
    istio.io/use-waypoint: waypoint
---
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
---
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: bookinfo
  labels:
    istio.io/waypoint-for: service
spec:
  gatewayClassName: istio-waypoint
  listeners:
    - name: mesh
      port: 15008
      protocol: HBONE
---
apiVersion: v1
kind: Pod
metadata:
  name: productpage-v1-6f9d8b7c5d-abcde
  namespace: bookinfo
  labels:
    app: productpage
    version: v1
  ownerReferences:
    - apiVersion: apps/v1
      kind: ReplicaSet
      name: productpage-v1-6f9d8b7c5d
      controller: true
      uid: 11111111-1111-1111-1111-111111111111
spec:
  nodeName: node-a
  serviceAccountName: bookinfo-productpage
  containers:
    - name: productpage
      image: productpage:1
      ports:
        - name: http-web
          containerPort: 9080
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2
  namespace: bookinfo
  labels:
    app: reviews
    version: v2
    service.istio.io/canonical-name: reviews-canonical
spec:
  nodeName: node-b
  serviceAccountName: bookinfo-reviews
  containers:
    - name: reviews
      image: reviews:2
      ports:
        - containerPort: 9080
---
apiVersion: v1
kind: Pod
metadata:
  name: unscheduled
  namespace: bookinfo
  labels:
    app: reviews
spec:
  containers:
    - name: c
---
apiVersion: v1
kind: Pod
metadata:
  name: legacy-app
  namespace: legacy
  labels:
    app: legacy
spec:
  nodeName: node-a
  containers:
    - name: c
---
apiVersion: v1
kind: Service
metadata:
  name: productpage
  namespace: bookinfo
spec:
  selector:
    app: productpage
  clusterIP: 10.96.0.10
  ports:
    - name: http
      port: 9080
      targetPort: http-web
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: bookinfo
  annotations:
    networking.istio.io/traffic-distribution: PreferClose
spec:
  selector:
    app: reviews
  clusterIP: 10.96.0.11
  ports:
    - name: http
      port: 80
      targetPort: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: legacy
  namespace: legacy
spec:
  selector:
    app: legacy
  clusterIP: 10.96.0.12
  ports:
    - port: 8080
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ratings-vm
  namespace: bookinfo
  labels:
    ambit.io/node: vm-1
spec:
  address: 192.168.1.20
  serviceAccount: bookinfo-ratings
  labels:
    app: ratings
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ratings
  namespace: bookinfo
spec:
  hosts: [ratings.bookinfo.mesh]
  addresses: [240.0.0.5]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
    - number: 9080
      name: http
      protocol: HTTP
  workloadSelector:
    labels:
      app: ratings
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews-viewer
  namespace: bookinfo
spec:
  selector:
    matchLabels:
      app: reviews
  action: ALLOW
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/bookinfo/sa/bookinfo-productpage"]
      to:
        - operation:
            ports: ["9080"]
    - from:
        - source:
            namespaces: ["bookinfo"]
      to:
        - operation:
            methods: ["GET"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-legacy
  namespace: bookinfo
spec:
  action: DENY
  rules:
    - from:
        - source:
            notNamespaces: ["bookinfo", "istio-*"]
      when:
        - key: request.headers[x-token]
          values: ["bad"]
        - key: source.ip
          notValues: ["10.0.0.0/8"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: global-allow-sa
  namespace: istio-system
  annotations:
    istio.io/dry-run: "true"
spec:
  rules:
    - from:
        - source:
            serviceAccounts: ["bookinfo-reviews", "other/sa"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: audit-all
  namespace: bookinfo
spec:
  action: AUDIT
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: waypoint-l7
  namespace: bookinfo
spec:
  targetRefs:
    - kind: Service
      group: ""
      name: reviews
  rules:
    - to:
        - operation:
            paths: ["/reviews/*"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: legacy-permissive
  namespace: legacy
spec:
  mtls:
    mode: PERMISSIVE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: reviews-metrics
  namespace: bookinfo
spec:
  selector:
    matchLabels:
      app: reviews
  portLevelMtls:
    "15020":
      mode: PERMISSIVE
`;

function load(text: string): Snapshot {
  const { resources, problems } = loadTexts([{ file: "bookinfo.yaml", text }]);
  assert.deepEqual(
    problems.map((p) => p.message),
    [],
  );
  return buildSnapshot({
    resources,
    podIps: new Map([
      ["bookinfo/productpage-v1-6f9d8b7c5d-abcde", ["10.244.1.5"]],
      ["bookinfo/reviews-v2", ["10.244.2.7", "fd00::7"]],
      ["legacy/legacy-app", ["10.244.1.9"]],
    ]),
    revocations: [
      {
        identity: "spiffe://cluster.local/ns/bookinfo/sa/evil",
        reason: "compromised",
        revokedAt: "2026-01-01T00:00:00Z",
      },
      { serial: "1f2e", reason: "key rotated", revokedAt: "2026-01-02T00:00:00Z" },
    ],
  });
}

/** Encode to Any and decode back: what a client sees on the wire. */
function wire<T>(typeUrl: string, message: object): T {
  const any = encodeAny(typeUrl, message);
  assert.equal(any.typeUrl, typeUrl);
  return decodeAny<T>(any);
}

function ip(bytes: Uint8Array | undefined): string {
  assert.ok(bytes);
  return bytes.length === 4 ? [...bytes].join(".") : Buffer.from(bytes).toString("hex");
}

const snap = load(MANIFESTS);
const PP_UID = "Kubernetes//Pod/bookinfo/productpage-v1-6f9d8b7c5d-abcde";
const REVIEWS_UID = "Kubernetes//Pod/bookinfo/reviews-v2";

function address(name: string): Address {
  const a = snap.addresses.get(name);
  assert.ok(a, `address ${name} missing; have ${[...snap.addresses.keys()].join(", ")}`);
  return wire<Address>(ADDRESS_TYPE_URL, a);
}

function authorization(name: string): Authorization {
  const a = snap.authorizations.get(name);
  assert.ok(a, `authorization ${name} missing; have ${[...snap.authorizations.keys()].join(", ")}`);
  return wire<Authorization>(AUTHORIZATION_TYPE_URL, a);
}

describe("xds protos", () => {
  test("the discovery service and resource types load through proto-loader", () => {
    const pkg = loadProtos();
    assert.ok(pkg["istio"]);
    const svc = adsServiceClient();
    const method = svc.service["DeltaAggregatedResources"];
    assert.ok(method);
    assert.equal(method.requestStream, true);
    assert.equal(method.responseStream, true);
    assert.equal(
      method.path,
      "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
    );
  });
});

describe("addresses", () => {
  test("resource names are workload uids and namespace/hostname, as istiod names them", () => {
    assert.deepEqual(
      [...snap.addresses.keys()],
      [
        "Kubernetes//Pod/bookinfo/productpage-v1-6f9d8b7c5d-abcde",
        "Kubernetes//Pod/bookinfo/reviews-v2",
        "Kubernetes//Pod/legacy/legacy-app",
        "Kubernetes/networking.istio.io/WorkloadEntry/bookinfo/ratings-vm",
        "bookinfo/productpage.bookinfo.svc.cluster.local",
        "bookinfo/ratings.bookinfo.mesh",
        "bookinfo/reviews.bookinfo.svc.cluster.local",
        "legacy/legacy.legacy.svc.cluster.local",
      ],
    );
  });

  test("a pod in an ambient namespace: identity, node, HBONE, telemetry names, services", () => {
    const a = address(PP_UID);
    assert.equal(a.type, "workload");
    const w = a.workload;
    assert.ok(w);
    assert.equal(w.uid, PP_UID);
    assert.equal(w.name, "productpage-v1-6f9d8b7c5d-abcde");
    assert.equal(w.namespace, "bookinfo");
    assert.deepEqual(w.addresses?.map(ip), ["10.244.1.5"]);
    assert.equal(w.serviceAccount, "bookinfo-productpage");
    assert.equal(w.node, "node-a");
    assert.equal(w.tunnelProtocol, "HBONE");
    assert.equal(w.status, "HEALTHY");
    assert.equal(w.clusterId, "Kubernetes");
    assert.equal(w.trustDomain, "", "the default trust domain is elided, as istiod does");
    assert.equal(w.canonicalName, "productpage");
    assert.equal(w.canonicalRevision, "v1");
    assert.equal(w.workloadType, "DEPLOYMENT");
    assert.equal(w.workloadName, "productpage-v1");
    // Named targetPort resolved from the container's port.
    assert.deepEqual(w.services, {
      "bookinfo/productpage.bookinfo.svc.cluster.local": {
        ports: [{ servicePort: 9080, targetPort: 9080, appProtocol: "UNKNOWN" }],
      },
    });
    // The namespace's waypoint is for services only: the workload keeps none.
    assert.equal(w.waypoint, null);
    assert.deepEqual(w.authorizationPolicies, ["istio-system/istio_converted_static_strict"]);
  });

  test("selector policies and converted PeerAuthentications are listed on the workloads they select", () => {
    const w = address(REVIEWS_UID).workload;
    assert.ok(w);
    assert.deepEqual(w.addresses?.map(ip), ["10.244.2.7", "fd000000000000000000000000000007"]);
    assert.equal(w.canonicalName, "reviews-canonical");
    assert.equal(w.workloadType, "POD");
    assert.equal(w.workloadName, "reviews-v2");
    assert.deepEqual(w.authorizationPolicies, [
      "bookinfo/reviews-viewer",
      "bookinfo/converted_peer_authentication_reviews-metrics",
    ]);
    assert.deepEqual(w.services?.["bookinfo/reviews.bookinfo.svc.cluster.local"]?.ports, [
      { servicePort: 80, targetPort: 9080, appProtocol: "UNKNOWN" },
    ]);
  });

  test("pods without a node are skipped; pods outside ambient use no tunnel", () => {
    assert.equal(snap.addresses.has("Kubernetes//Pod/bookinfo/unscheduled"), false);
    const w = address("Kubernetes//Pod/legacy/legacy-app").workload;
    assert.equal(w?.tunnelProtocol, "NONE");
    assert.equal(w?.serviceAccount, "default");
    assert.equal(w?.workloadName, "legacy-app");
    // Namespace PERMISSIVE overrides the mesh STRICT: no static strict reference.
    assert.deepEqual(w?.authorizationPolicies, []);
  });

  test("a pod without a known IP yields a workload without addresses", () => {
    const { resources } = loadTexts([{ file: "x.yaml", text: MANIFESTS }]);
    const s = buildSnapshot({ resources, podIps: new Map(), revocations: [] });
    const a = s.addresses.get(PP_UID);
    assert.ok(a);
    assert.deepEqual(wire<Address>(ADDRESS_TYPE_URL, a).workload?.addresses, []);
  });

  test("services: hostname, cluster IP, ports, waypoint from the namespace, traffic distribution", () => {
    const a = address("bookinfo/productpage.bookinfo.svc.cluster.local");
    assert.equal(a.type, "service");
    const s = a.service;
    assert.ok(s);
    assert.equal(s.name, "productpage");
    assert.equal(s.namespace, "bookinfo");
    assert.equal(s.hostname, "productpage.bookinfo.svc.cluster.local");
    assert.deepEqual(
      s.addresses?.map((n) => [n.network, ip(n.address)]),
      [["", "10.96.0.10"]],
    );
    // Named targetPort: 0 at the service, resolved per workload.
    assert.deepEqual(s.ports, [{ servicePort: 9080, targetPort: 0, appProtocol: "UNKNOWN" }]);
    assert.deepEqual(s.waypoint, {
      hostname: { namespace: "bookinfo", hostname: "waypoint.bookinfo.svc.cluster.local" },
      hboneMtlsPort: 15008,
      destination: "hostname",
    });
    const reviews = address("bookinfo/reviews.bookinfo.svc.cluster.local").service;
    assert.deepEqual(reviews?.ports, [{ servicePort: 80, targetPort: 9080, appProtocol: "UNKNOWN" }]);
    assert.deepEqual(reviews?.loadBalancing, {
      routingPreference: ["NETWORK", "REGION", "ZONE", "SUBZONE"],
      mode: "FAILOVER",
      healthPolicy: "ONLY_HEALTHY",
    });
    const legacy = address("legacy/legacy.legacy.svc.cluster.local").service;
    assert.equal(legacy?.waypoint, null);
    assert.deepEqual(legacy?.ports, [{ servicePort: 8080, targetPort: 8080, appProtocol: "UNKNOWN" }]);
  });

  test("WorkloadEntry and ServiceEntry", () => {
    const w = address("Kubernetes/networking.istio.io/WorkloadEntry/bookinfo/ratings-vm").workload;
    assert.ok(w);
    assert.deepEqual(w.addresses?.map(ip), ["192.168.1.20"]);
    assert.equal(w.serviceAccount, "bookinfo-ratings");
    assert.equal(w.node, "vm-1");
    assert.equal(w.tunnelProtocol, "HBONE");
    assert.deepEqual(Object.keys(w.services ?? {}), ["bookinfo/ratings.bookinfo.mesh"]);
    const s = address("bookinfo/ratings.bookinfo.mesh").service;
    assert.equal(s?.hostname, "ratings.bookinfo.mesh");
    assert.deepEqual(
      s?.addresses?.map((n) => ip(n.address)),
      ["240.0.0.5"],
    );
    assert.deepEqual(s?.ports, [{ servicePort: 9080, targetPort: 0, appProtocol: "UNKNOWN" }]);
  });

  test("the namespace waypoint applies to workloads too when it serves all traffic", () => {
    const text = MANIFESTS.replace("istio.io/waypoint-for: service", "istio.io/waypoint-for: all");
    const s = load(text);
    const a = s.addresses.get(PP_UID);
    assert.ok(a);
    const w = wire<Address>(ADDRESS_TYPE_URL, a).workload;
    assert.equal(w?.waypoint?.hostname?.hostname, "waypoint.bookinfo.svc.cluster.local");
  });
});

describe("authorizations", () => {
  test("policies sent: ALLOW/DENY without targetRefs, plus the PeerAuthentication-derived ones", () => {
    assert.deepEqual(
      [...snap.authorizations.keys()],
      [
        "bookinfo/converted_peer_authentication_reviews-metrics",
        "bookinfo/deny-legacy",
        "bookinfo/reviews-viewer",
        "istio-system/global-allow-sa",
        "istio-system/istio_converted_static_strict",
      ],
    );
  });

  test("ALLOW with a selector: the rule needing HTTP is dropped, the L4 rule kept", () => {
    const a = authorization("bookinfo/reviews-viewer");
    assert.equal(a.name, "reviews-viewer");
    assert.equal(a.namespace, "bookinfo");
    assert.equal(a.scope, "WORKLOAD_SELECTOR");
    assert.equal(a.action, "ALLOW");
    assert.equal(a.dryRun, false);
    assert.equal(a.rules?.length, 1);
    const clauses = a.rules?.[0]?.clauses ?? [];
    assert.equal(clauses.length, 2);
    assert.deepEqual(clauses[0]?.matches?.[0]?.destinationPorts, [9080]);
    assert.deepEqual(clauses[1]?.matches?.[0]?.principals, [
      { exact: "cluster.local/ns/bookinfo/sa/bookinfo-productpage", matchType: "exact" },
    ]);
  });

  test("DENY at namespace scope: an HTTP condition becomes an empty match, L4 ones are kept", () => {
    const a = authorization("bookinfo/deny-legacy");
    assert.equal(a.scope, "NAMESPACE");
    assert.equal(a.action, "DENY");
    const clauses = a.rules?.[0]?.clauses ?? [];
    assert.equal(clauses.length, 3);
    assert.deepEqual(clauses[0]?.matches?.[0]?.notNamespaces, [
      { exact: "bookinfo", matchType: "exact" },
      { prefix: "istio-", matchType: "prefix" },
    ]);
    // ztunnel cannot see headers: istiod sends an empty match, which ztunnel skips, so the clause and
    // the rule cannot match (no effect at L4, as the shared conformance cases l4-deny-*-no-effect
    // require). A clause with no match at all would match everything in ztunnel.
    assert.equal(clauses[1]?.matches?.length, 1);
    const empty = Object.values(clauses[1]?.matches?.[0] ?? {});
    assert.ok(
      empty.every((v) => Array.isArray(v) && v.length === 0),
      "an empty match",
    );
    const ipMatch = clauses[2]?.matches?.[0];
    assert.equal(ipMatch?.notSourceIps?.length, 1);
    assert.equal(ip(ipMatch?.notSourceIps?.[0]?.address), "10.0.0.0");
    assert.equal(ipMatch?.notSourceIps?.[0]?.length, 8);
  });

  test("a root-namespace policy is GLOBAL; dry-run is flagged; service accounts are qualified", () => {
    const a = authorization("istio-system/global-allow-sa");
    assert.equal(a.scope, "GLOBAL");
    assert.equal(a.dryRun, true);
    assert.deepEqual(a.rules?.[0]?.clauses?.[0]?.matches?.[0]?.serviceAccounts, [
      { namespace: "istio-system", serviceAccount: "bookinfo-reviews" },
      { namespace: "other", serviceAccount: "sa" },
    ]);
  });

  test("the static STRICT policy denies connections without a peer identity", () => {
    const a = authorization("istio-system/istio_converted_static_strict");
    assert.equal(a.scope, "WORKLOAD_SELECTOR");
    assert.equal(a.action, "DENY");
    assert.deepEqual(a.rules?.[0]?.clauses?.[0]?.matches?.[0]?.notPrincipals, [
      { presence: {}, matchType: "presence" },
    ]);
  });

  test("a workload PERMISSIVE port under a STRICT mesh: exempt the port, merge the STRICT default", () => {
    const a = authorization("bookinfo/converted_peer_authentication_reviews-metrics");
    assert.equal(a.scope, "WORKLOAD_SELECTOR");
    assert.equal(a.action, "DENY");
    assert.equal(a.rules?.length, 1);
    const clauses = a.rules?.[0]?.clauses ?? [];
    assert.deepEqual(clauses[0]?.matches?.[0]?.notDestinationPorts, [15020]);
    assert.deepEqual(clauses[1]?.matches?.[0]?.notPrincipals, [{ presence: {}, matchType: "presence" }]);
  });

  test("namespace STRICT over a PERMISSIVE mesh; a workload STRICT port under a PERMISSIVE namespace", () => {
    const text = MANIFESTS.replace(
      "name: default\n  namespace: istio-system\nspec:\n  mtls:\n    mode: STRICT",
      "name: default\n  namespace: istio-system\nspec:\n  mtls:\n    mode: PERMISSIVE",
    )
      .replace('"15020":\n      mode: PERMISSIVE', '"9080":\n      mode: STRICT')
      .concat(
        "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: strict-ns\n  namespace: legacy\nspec:\n  mtls:\n    mode: STRICT\n",
      )
      .replace(
        "name: legacy-permissive\n  namespace: legacy",
        "name: bookinfo-permissive\n  namespace: bookinfo",
      );
    const s = load(text);
    // legacy: namespace STRICT wins over the PERMISSIVE mesh.
    const legacy = s.addresses.get("Kubernetes//Pod/legacy/legacy-app");
    assert.deepEqual(legacy?.workload?.authorizationPolicies, ["istio-system/istio_converted_static_strict"]);
    // bookinfo is PERMISSIVE; reviews has port 9080 STRICT: its converted policy is referenced alone.
    const reviews = s.addresses.get(REVIEWS_UID);
    assert.deepEqual(reviews?.workload?.authorizationPolicies, [
      "bookinfo/reviews-viewer",
      "bookinfo/converted_peer_authentication_reviews-metrics",
    ]);
    const pol = s.authorizations.get("bookinfo/converted_peer_authentication_reviews-metrics");
    assert.ok(pol);
    const a = wire<Authorization>(AUTHORIZATION_TYPE_URL, pol);
    assert.equal(a.action, "DENY");
    assert.equal(a.rules?.length, 1);
    assert.deepEqual(a.rules?.[0]?.clauses?.[0]?.matches?.[0]?.destinationPorts, [9080]);
    assert.deepEqual(a.rules?.[0]?.clauses?.[0]?.matches?.[0]?.notPrincipals, [
      { presence: {}, matchType: "presence" },
    ]);
    const pp = s.addresses.get(PP_UID);
    assert.deepEqual(pp?.workload?.authorizationPolicies, []);
  });

  test("no PeerAuthentication at all: no static policy, no references", () => {
    const { resources } = loadTexts([{ file: "x.yaml", text: MANIFESTS }]);
    const s = buildSnapshot({
      resources: resources.filter((r) => r.kind !== "PeerAuthentication"),
      podIps: new Map(),
      revocations: [],
    });
    assert.equal(s.authorizations.has("istio-system/istio_converted_static_strict"), false);
    const w = s.addresses.get(PP_UID);
    assert.deepEqual(w?.workload?.authorizationPolicies, []);
  });
});

describe("discovery messages", () => {
  test("a DeltaDiscoveryResponse carrying an Address round-trips through proto-loader's serializers", () => {
    const method = adsServiceClient().service["DeltaAggregatedResources"];
    assert.ok(method);
    const a = snap.addresses.get(PP_UID);
    assert.ok(a);
    const msg: DeltaDiscoveryResponseMessage = {
      typeUrl: ADDRESS_TYPE_URL,
      nonce: "n1",
      resources: [{ name: PP_UID, version: resourceVersion(a), resource: encodeAny(ADDRESS_TYPE_URL, a) }],
      removedResources: ["Kubernetes//Pod/bookinfo/gone"],
    };
    const back = method.responseDeserialize(method.responseSerialize(msg)) as DeltaDiscoveryResponseMessage;
    assert.equal(back.nonce, "n1");
    assert.equal(back.typeUrl, ADDRESS_TYPE_URL);
    assert.deepEqual(back.removedResources, ["Kubernetes//Pod/bookinfo/gone"]);
    const r = back.resources?.[0];
    assert.ok(r?.resource?.value);
    assert.equal(r.name, PP_UID);
    assert.equal(r.version, resourceVersion(a));
    // proto-loader keeps Any's field as type_url (protobufjs's bundled well-known types).
    assert.equal(anyTypeUrl(r.resource), ADDRESS_TYPE_URL);
    assert.equal(decodeAny<Address>({ ...r.resource, value: r.resource.value }).workload?.node, "node-a");
  });

  test("a DeltaDiscoveryRequest NACK with node metadata decodes", () => {
    const method = adsServiceClient().service["DeltaAggregatedResources"];
    assert.ok(method);
    const req: DeltaDiscoveryRequestMessage = {
      node: { id: "node-a", metadata: { fields: { NAMESPACE: { stringValue: "bookinfo" } } } },
      typeUrl: AUTHORIZATION_TYPE_URL,
      initialResourceVersions: { "bookinfo/deny-legacy": "abc" },
      responseNonce: "n1",
      errorDetail: { code: 3, message: "bad resource" },
    };
    const back = method.requestDeserialize(method.requestSerialize(req)) as DeltaDiscoveryRequestMessage;
    assert.equal(back.node?.id, "node-a");
    assert.deepEqual(back.initialResourceVersions, { "bookinfo/deny-legacy": "abc" });
    assert.equal(back.errorDetail?.code, 3);
    assert.equal(back.errorDetail?.message, "bad resource");
  });
});

describe("revocations and versions", () => {
  test("revocations travel as one RevocationList named 'revocations'", () => {
    assert.deepEqual([...snap.revocations.keys()], ["revocations"]);
    const list = snap.revocations.get("revocations");
    assert.ok(list);
    const decoded = wire<RevocationListMessage>(REVOCATION_LIST_TYPE_URL, list);
    assert.deepEqual(decoded.revocations, [
      {
        identity: "spiffe://cluster.local/ns/bookinfo/sa/evil",
        serial: "",
        reason: "compromised",
        revokedAt: "2026-01-01T00:00:00Z",
      },
      { identity: "", serial: "1f2e", reason: "key rotated", revokedAt: "2026-01-02T00:00:00Z" },
    ]);
  });

  test("versions are stable across rebuilds and change with the content", () => {
    const again = load(MANIFESTS);
    for (const [name, a] of snap.addresses) {
      const b = again.addresses.get(name);
      assert.ok(b);
      assert.equal(resourceVersion(a), resourceVersion(b), name);
    }
    const changed = load(MANIFESTS.replace("clusterIP: 10.96.0.10", "clusterIP: 10.96.0.20"));
    const key = "bookinfo/productpage.bookinfo.svc.cluster.local";
    const before = snap.addresses.get(key);
    const after = changed.addresses.get(key);
    assert.ok(before && after);
    assert.notEqual(resourceVersion(before), resourceVersion(after));
    const pp = snap.addresses.get(PP_UID);
    const ppAfter = changed.addresses.get(PP_UID);
    assert.ok(pp && ppAfter);
    assert.equal(resourceVersion(pp), resourceVersion(ppAfter));
    const rev = snap.revocations.get("revocations");
    assert.ok(rev);
    assert.match(resourceVersion(rev), /^[0-9a-f]{16}$/);
  });
});
