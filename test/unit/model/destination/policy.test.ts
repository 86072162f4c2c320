// The effective cluster policy: Istio/Envoy defaults, and how each DestinationRule field maps.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  MAX_UINT32,
  defaultClusterPolicy,
  resolveDestination,
  type ClusterPolicy,
} from "../../../../src/model/destination/index.js";
import { indexOf } from "./helpers.js";

function policyOf(trafficPolicy: string): ClusterPolicy {
  const idx = indexOf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: default}
spec:
  host: reviews
  trafficPolicy:
${trafficPolicy
  .split("\n")
  .map((l) => `    ${l}`)
  .join("\n")}
`);
  return resolveDestination(idx, {
    host: "reviews.default.svc.cluster.local",
    clientNamespace: "default",
    port: 80,
  });
}

describe("defaults", () => {
  test("no rule: LEAST_REQUEST, unlimited pools, 10s connect, 1h idle, no outlier detection", () => {
    const p = defaultClusterPolicy();
    assert.deepEqual(p.lb, { kind: "LEAST_REQUEST" });
    assert.deepEqual(p.connectionPool, {
      maxConnections: MAX_UINT32,
      http1MaxPendingRequests: MAX_UINT32,
      http2MaxRequests: MAX_UINT32,
      maxRequestsPerConnection: 0,
      maxRetries: MAX_UINT32,
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 3_600_000,
    });
    assert.equal(p.outlier, null);
    assert.equal(p.tls, undefined);
  });

  test("an empty outlierDetection gets Envoy's defaults and Istio's minHealthPercent 0", () => {
    const p = policyOf("outlierDetection: {}");
    assert.deepEqual(p.outlier, {
      consecutive5xxErrors: 5,
      consecutiveGatewayErrors: 0,
      splitExternalLocalOriginErrors: false,
      consecutiveLocalOriginFailures: 5,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
    });
  });
});

describe("field mapping", () => {
  test("outlierDetection fields", () => {
    const p = policyOf(
      "outlierDetection: {consecutive5xxErrors: 2, consecutiveGatewayErrors: 1, interval: 1s, baseEjectionTime: 400s, maxEjectionPercent: 50, minHealthPercent: 30}",
    );
    assert.equal(p.outlier?.consecutive5xxErrors, 2);
    assert.equal(p.outlier?.consecutiveGatewayErrors, 1);
    assert.equal(p.outlier?.intervalMs, 1000);
    assert.equal(p.outlier?.baseEjectionTimeMs, 400_000);
    assert.equal(p.outlier?.maxEjectionTimeMs, 400_000, "the max ejection time is never below the base");
    assert.equal(p.outlier?.maxEjectionPercent, 50);
    assert.equal(p.outlier?.minHealthPercent, 30);
  });

  test("deprecated consecutiveErrors counts gateway errors only", () => {
    const p = policyOf("outlierDetection: {consecutiveErrors: 4}");
    assert.equal(p.outlier?.consecutiveGatewayErrors, 4);
    assert.equal(p.outlier?.consecutive5xxErrors, 0);
  });

  test("connectionPool fields; 0 keeps the default", () => {
    const p = policyOf(
      "connectionPool: {tcp: {maxConnections: 1, connectTimeout: 250ms, idleTimeout: 5s}, http: {http1MaxPendingRequests: 2, http2MaxRequests: 3, maxRequestsPerConnection: 4, maxRetries: 0}}",
    );
    assert.deepEqual(p.connectionPool, {
      maxConnections: 1,
      http1MaxPendingRequests: 2,
      http2MaxRequests: 3,
      maxRequestsPerConnection: 4,
      maxRetries: MAX_UINT32,
      connectTimeoutMs: 250,
      idleTimeoutMs: 5000,
    });
  });

  test("the HTTP idle timeout wins over the TCP one", () => {
    const p = policyOf("connectionPool: {tcp: {idleTimeout: 5s}, http: {idleTimeout: 2s}}");
    assert.equal(p.connectionPool.idleTimeoutMs, 2000);
  });

  const simple: [string, string][] = [
    ["ROUND_ROBIN", "ROUND_ROBIN"],
    ["RANDOM", "RANDOM"],
    ["PASSTHROUGH", "PASSTHROUGH"],
    ["LEAST_REQUEST", "LEAST_REQUEST"],
    ["LEAST_CONN", "LEAST_REQUEST"],
    ["UNSPECIFIED", "LEAST_REQUEST"],
  ];
  for (const [given, want] of simple) {
    test(`simple ${given} → ${want}`, () => {
      assert.deepEqual(policyOf(`loadBalancer: {simple: ${given}}`).lb, { kind: want });
    });
  }

  test("consistentHash: ring hash by default (ring 1024), keys mapped", () => {
    assert.deepEqual(policyOf("loadBalancer: {consistentHash: {httpHeaderName: X-User}}").lb, {
      kind: "RING_HASH",
      hash: { key: { kind: "header", name: "x-user" }, minimumRingSize: 1024, tableSize: 65537 },
    });
    const cookie = policyOf(
      "loadBalancer: {consistentHash: {httpCookie: {name: sid, path: /, ttl: 60s}, ringHash: {minimumRingSize: 64}}}",
    ).lb;
    assert.deepEqual(cookie, {
      kind: "RING_HASH",
      hash: {
        key: { kind: "cookie", name: "sid", path: "/", ttlMs: 60_000 },
        minimumRingSize: 64,
        tableSize: 65537,
      },
    });
    const ip = policyOf("loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 32}}").lb;
    assert.equal(ip.kind === "RING_HASH" && ip.hash.minimumRingSize, 32, "deprecated minimumRingSize");
    const q = policyOf("loadBalancer: {consistentHash: {httpQueryParameterName: u}}").lb;
    assert.deepEqual(q.kind === "RING_HASH" && q.hash.key, { kind: "queryParameter", name: "u" });
  });

  test("consistentHash with maglev", () => {
    assert.deepEqual(
      policyOf("loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 251}}}").lb,
      {
        kind: "MAGLEV",
        hash: { key: { kind: "sourceIp" }, minimumRingSize: 1024, tableSize: 251 },
      },
    );
  });
});
