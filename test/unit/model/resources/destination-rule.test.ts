// DestinationRule: bookinfo-style rules with subsets and traffic policies load; load balancer,
// connection pool, outlier detection, TLS and subset rules are enforced with exact paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { DestinationRuleSpec } from "../../../../src/model/resources/networking.js";
import {
  assertProblems,
  checkMistake,
  DELETE,
  load,
  specOf,
  withChanges,
  type Manifest,
  type Mistake,
} from "./helpers.js";

const REVIEWS = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews.bookinfo.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
      localityLbSetting:
        enabled: true
        distribute:
        - from: us-west/zone1/*
          to:
            "us-west/zone1/*": 80
            "us-west/zone2/*": 20
      warmupDurationSecs: 30s
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
        tcpKeepalive:
          time: 7200s
          interval: 75s
        idleTimeout: 0s
      http:
        http1MaxPendingRequests: 1024
        http2MaxRequests: 1024
        maxRequestsPerConnection: 10
        maxRetries: 3
        idleTimeout: 1h
        h2UpgradePolicy: UPGRADE
        maxConcurrentStreams: 100
    outlierDetection:
      consecutive5xxErrors: 7
      consecutiveGatewayErrors: 5
      interval: 5m
      baseEjectionTime: 15m
      maxEjectionPercent: 50
      minHealthPercent: 10
    tls:
      mode: ISTIO_MUTUAL
    portLevelSettings:
    - port:
        number: 9080
      loadBalancer:
        consistentHash:
          httpCookie:
            name: user
            path: /
            ttl: 0s
          ringHash:
            minimumRingSize: 1024
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
  - name: v3
    labels:
      version: v3
    trafficPolicy:
      loadBalancer:
        consistentHash:
          useSourceIp: true
          maglev:
            tableSize: 65537
  exportTo: ["."]
`;

describe("DestinationRule", () => {
  test("a reviews rule with subsets and a full traffic policy loads", () => {
    const spec = specOf<DestinationRuleSpec>(REVIEWS);
    assert.equal(spec.host, "reviews.bookinfo.svc.cluster.local");
    assert.deepEqual(
      spec.subsets?.map((s) => s.name),
      ["v1", "v2", "v3"],
    );
    assert.equal(spec.trafficPolicy?.connectionPool?.http?.maxRetries, 3);
    assert.equal(
      spec.trafficPolicy?.portLevelSettings?.[0]?.loadBalancer?.consistentHash?.httpCookie?.name,
      "user",
    );
  });

  test("defaults: tls mode DISABLE, proxyProtocol V1, tunnel CONNECT", () => {
    const spec = specOf<DestinationRuleSpec>(`
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: egress}
spec:
  host: "*.example.com"
  trafficPolicy:
    tls: {sni: example.com}
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, credentialName: client-cert}
  subsets:
  - name: tunneled
    trafficPolicy:
      tunnel: {targetHost: 10.0.0.1, targetPort: 8443}
  - name: proxied
    trafficPolicy:
      proxyProtocol: {}
`);
    assert.equal(spec.trafficPolicy?.tls?.mode, "DISABLE");
    assert.equal(spec.subsets?.[0]?.trafficPolicy?.tunnel?.protocol, "CONNECT");
    assert.equal(spec.subsets?.[1]?.trafficPolicy?.proxyProtocol?.version, "V1");
  });

  test("mutual TLS with files, and a workload-selector rule kept in its namespace", () => {
    specOf<DestinationRuleSpec>(`
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: db-mtls}
spec:
  host: mydbserver.prod.svc.cluster.local
  workloadSelector:
    matchLabels: {app: ratings}
  exportTo: ["."]
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/myclientcert.pem
      privateKey: /etc/certs/client_private_key.pem
      caCertificates: /etc/certs/rootcacerts.pem
      subjectAltNames: [db.example.com]
`);
  });

  const base = parse(REVIEWS) as Manifest;
  const R = "DestinationRule bookinfo/reviews";
  const TP = "spec.trafficPolicy";
  const mistakes: Mistake[] = [
    { name: "unknown field", set: { "spec.subset": [] }, code: "AMBIT_E_UNKNOWN_FIELD", path: "spec.subset" },
    { name: "host missing", set: { "spec.host": DELETE }, code: "AMBIT_E_MISSING_FIELD", path: "spec.host" },
    { name: "host a number", set: { "spec.host": 42 }, code: "AMBIT_E_INVALID_TYPE", path: "spec.host" },
    {
      name: "host malformed",
      set: { "spec.host": "reviews..svc" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.host",
    },
    {
      name: "bad simple LB",
      set: { [`${TP}.loadBalancer.simple`]: "WEIGHTED" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.loadBalancer.simple`,
    },
    {
      name: "simple and consistentHash together",
      set: { [`${TP}.loadBalancer.consistentHash`]: { httpHeaderName: "x-user" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.loadBalancer.consistentHash`,
    },
    {
      name: "two hash keys",
      set: { [`${TP}.portLevelSettings[0].loadBalancer.consistentHash.useSourceIp`]: true },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.portLevelSettings[0].loadBalancer.consistentHash.useSourceIp`,
    },
    {
      name: "cookie without name",
      set: { [`${TP}.portLevelSettings[0].loadBalancer.consistentHash.httpCookie.name`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${TP}.portLevelSettings[0].loadBalancer.consistentHash.httpCookie.name`,
    },
    {
      name: "maglev table size not prime",
      set: { "spec.subsets[2].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize": 65536 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.subsets[2].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
    },
    {
      name: "locality weights not adding to 100",
      set: { [`${TP}.loadBalancer.localityLbSetting.distribute[0].to["us-west/zone2/*"]`]: 10 },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.loadBalancer.localityLbSetting.distribute[0].to`,
    },
    {
      name: "negative maxConnections",
      set: { [`${TP}.connectionPool.tcp.maxConnections`]: -1 },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.connectionPool.tcp.maxConnections`,
    },
    {
      name: "connectTimeout not a duration",
      set: { [`${TP}.connectionPool.tcp.connectTimeout`]: "30" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.connectionPool.tcp.connectTimeout`,
    },
    {
      name: "connectTimeout below 1ms",
      set: { [`${TP}.connectionPool.tcp.connectTimeout`]: "500us" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.connectionPool.tcp.connectTimeout`,
    },
    {
      name: "useClientProtocol with UPGRADE",
      set: { [`${TP}.connectionPool.http.useClientProtocol`]: true },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.connectionPool.http.useClientProtocol`,
    },
    {
      name: "empty connection pool",
      set: { [`${TP}.connectionPool`]: {} },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.connectionPool`,
    },
    {
      name: "bad h2UpgradePolicy",
      set: { [`${TP}.connectionPool.http.h2UpgradePolicy`]: "ALWAYS" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.connectionPool.http.h2UpgradePolicy`,
    },
    {
      name: "maxEjectionPercent over 100",
      set: { [`${TP}.outlierDetection.maxEjectionPercent`]: 150 },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.outlierDetection.maxEjectionPercent`,
    },
    {
      name: "local-origin failures without split",
      set: { [`${TP}.outlierDetection.consecutiveLocalOriginFailures`]: 3 },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.outlierDetection.consecutiveLocalOriginFailures`,
    },
    {
      name: "consecutive5xxErrors as string",
      set: { [`${TP}.outlierDetection.consecutive5xxErrors`]: "7" },
      code: "AMBIT_E_INVALID_TYPE",
      path: `${TP}.outlierDetection.consecutive5xxErrors`,
    },
    {
      name: "bad TLS mode",
      set: { [`${TP}.tls.mode`]: "STRICT" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.tls.mode`,
    },
    {
      name: "MUTUAL without key",
      set: { [`${TP}.tls`]: { mode: "MUTUAL", clientCertificate: "/c.pem" } },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${TP}.tls.privateKey`,
    },
    {
      name: "port-level policy without port",
      set: { [`${TP}.portLevelSettings[0].port`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${TP}.portLevelSettings[0].port`,
    },
    {
      name: "port-level port out of range",
      set: { [`${TP}.portLevelSettings[0].port.number`]: 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.portLevelSettings[0].port.number`,
    },
    {
      name: "tunnel and proxyProtocol together",
      set: {
        [`${TP}.tunnel`]: { targetHost: "proxy.example.com", targetPort: 3128 },
        [`${TP}.proxyProtocol`]: { version: "V2" },
      },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${TP}.proxyProtocol`,
    },
    {
      name: "empty subset traffic policy",
      set: { "spec.subsets[0].trafficPolicy": {} },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.subsets[0].trafficPolicy",
    },
    {
      name: "subset name missing",
      set: { "spec.subsets[0].name": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.subsets[0].name",
    },
    {
      name: "subset name with '.'",
      set: { "spec.subsets[0].name": "v1.0" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.subsets[0].name",
    },
    {
      name: "duplicate subset names",
      set: { "spec.subsets[1].name": "v1" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.subsets[1].name",
    },
    {
      name: "subset label invalid",
      set: { "spec.subsets[0].labels.version": "v 1" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.subsets[0].labels.version",
    },
    {
      name: "subsets an object",
      set: { "spec.subsets": { v1: {} } },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.subsets",
    },
    {
      name: "exportTo '*' with others",
      set: { "spec.exportTo": ["*", "."] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.exportTo",
    },
    {
      name: "exportTo '~' (ServiceEntry only)",
      set: { "spec.exportTo": ["~"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.exportTo[0]",
    },
    {
      name: "workload selector exported everywhere",
      set: { "spec.workloadSelector": { matchLabels: { app: "x" } }, "spec.exportTo": ["*"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.exportTo",
    },
    {
      name: "workload selector label key invalid",
      set: { "spec.workloadSelector": { matchLabels: { "a/b/c": "x" } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: 'spec.workloadSelector.matchLabels["a/b/c"]',
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(base, R, m));

  test("several mistakes in one rule are all reported", () => {
    const text = withChanges(base, {
      "spec.subsets[1].labels.version": "v 2",
      [`${TP}.tls.mode`]: "STRICT",
      [`${TP}.outlierDetection.interval`]: "often",
    });
    assertProblems(load(text), [
      { code: "AMBIT_E_INVALID_VALUE", path: "spec.subsets[1].labels.version" },
      { code: "AMBIT_E_INVALID_VALUE", path: `${TP}.tls.mode` },
      { code: "AMBIT_E_INVALID_VALUE", path: `${TP}.outlierDetection.interval` },
    ]);
  });
});
