// DestinationRule lookup (client namespace, then service namespace, then root namespace;
// exportTo; exact before the longest wildcard) and the merge of port-level and subset policies.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  findDestinationRule,
  matchesSubset,
  qualifyHost,
  resolveDestination,
} from "../../../../src/model/destination/index.js";
import { indexOf } from "./helpers.js";

const REVIEWS = "reviews.default.svc.cluster.local";

function dr(ns: string, name: string, host: string, extra = ""): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}}
spec:
  host: "${host}"
${extra}`;
}

const LB = (simple: string) => `  trafficPolicy: {loadBalancer: {simple: ${simple}}}\n`;

describe("DestinationRule lookup precedence", () => {
  const yaml = [
    dr("default", "svc-ns", "reviews", LB("RANDOM")),
    dr("frontend", "client-ns", REVIEWS, LB("ROUND_ROBIN")),
    dr("istio-system", "root", "*.svc.cluster.local", LB("PASSTHROUGH")),
  ].join("");
  const idx = indexOf(yaml);

  test("a rule in the client's namespace wins over the service's", () => {
    const p = resolveDestination(idx, { host: REVIEWS, clientNamespace: "frontend", port: 9080 });
    assert.equal(p.rule, "frontend/client-ns");
    assert.equal(p.lb.kind, "ROUND_ROBIN");
  });

  test("otherwise the service namespace's rule (short host qualified by its namespace)", () => {
    const p = resolveDestination(idx, { host: REVIEWS, clientNamespace: "backend", port: 9080 });
    assert.equal(p.rule, "default/svc-ns");
    assert.equal(p.lb.kind, "RANDOM");
  });

  test("otherwise the root namespace's rule", () => {
    const p = resolveDestination(idx, {
      host: "ratings.default.svc.cluster.local",
      clientNamespace: "backend",
      port: 9080,
    });
    assert.equal(p.rule, "istio-system/root");
    assert.equal(p.lb.kind, "PASSTHROUGH");
  });

  test("no rule at all: Istio's defaults and no rule id", () => {
    const p = resolveDestination(indexOf(dr("default", "x", "other")), {
      host: REVIEWS,
      clientNamespace: "default",
      port: 9080,
    });
    assert.equal(p.rule, undefined);
    assert.equal(p.lb.kind, "LEAST_REQUEST");
    assert.equal(p.outlier, null);
    assert.equal(p.connectionPool.maxConnections, 2 ** 32 - 1);
  });

  test("a rule in a namespace that is neither client, service nor root is not used", () => {
    const idx2 = indexOf(dr("elsewhere", "x", REVIEWS, LB("RANDOM")));
    assert.equal(findDestinationRule(idx2, REVIEWS, "frontend"), undefined);
  });
});

describe("exportTo", () => {
  test('"." keeps the rule to its own namespace', () => {
    const idx = indexOf(dr("default", "private", "reviews", `  exportTo: ["."]\n` + LB("RANDOM")));
    assert.equal(findDestinationRule(idx, REVIEWS, "frontend"), undefined);
    assert.equal(findDestinationRule(idx, REVIEWS, "default")?.id, "default/private");
  });

  test('"*" and unset export to every namespace', () => {
    for (const extra of [`  exportTo: ["*"]\n`, ""]) {
      const idx = indexOf(dr("default", "pub", "reviews", extra + LB("RANDOM")));
      assert.equal(findDestinationRule(idx, REVIEWS, "frontend")?.id, "default/pub");
    }
  });

  test("a named namespace sees the rule, others do not", () => {
    const idx = indexOf(dr("default", "named", "reviews", `  exportTo: [frontend]\n` + LB("RANDOM")));
    assert.equal(findDestinationRule(idx, REVIEWS, "frontend")?.id, "default/named");
    assert.equal(findDestinationRule(idx, REVIEWS, "backend"), undefined);
  });

  test("a rule hidden from the client falls through to the root namespace", () => {
    const idx = indexOf(
      dr("default", "private", "reviews", `  exportTo: ["."]\n` + LB("RANDOM")) +
        dr("istio-system", "root", "*.cluster.local", LB("ROUND_ROBIN")),
    );
    assert.equal(findDestinationRule(idx, REVIEWS, "frontend")?.id, "istio-system/root");
  });

  test('root namespace rules honour exportTo "."', () => {
    const idx = indexOf(dr("istio-system", "root", "*.cluster.local", `  exportTo: ["."]\n` + LB("RANDOM")));
    assert.equal(findDestinationRule(idx, REVIEWS, "frontend"), undefined);
  });
});

describe("host matching", () => {
  const idx = indexOf(
    [
      dr("default", "star", "*", LB("RANDOM")),
      dr("default", "short-wild", "*.cluster.local", LB("ROUND_ROBIN")),
      dr("default", "long-wild", "*.default.svc.cluster.local", LB("PASSTHROUGH")),
      dr("default", "exact", REVIEWS, LB("LEAST_REQUEST")),
    ].join(""),
  );
  const cases: [string, string][] = [
    [REVIEWS, "default/exact"],
    ["ratings.default.svc.cluster.local", "default/long-wild"],
    ["ratings.other.svc.cluster.local", "default/short-wild"],
    ["example.com", "default/star"],
  ];
  for (const [host, want] of cases) {
    test(`${host} → ${want}`, () => {
      assert.equal(findDestinationRule(idx, host, "default")?.id, want);
    });
  }

  test("qualifyHost: short names take the rule's namespace, dotted names are kept", () => {
    assert.equal(qualifyHost("reviews", "prod", "cluster.local"), "reviews.prod.svc.cluster.local");
    assert.equal(qualifyHost("api.example.com", "prod", "cluster.local"), "api.example.com");
    assert.equal(qualifyHost("*", "prod", "cluster.local"), "*");
  });

  test("rules with a workloadSelector are not used by the waypoint", () => {
    const idx2 = indexOf(
      dr("default", "sel", "reviews", `  workloadSelector: {matchLabels: {app: x}}\n` + LB("RANDOM")),
    );
    assert.equal(findDestinationRule(idx2, REVIEWS, "default"), undefined);
  });

  test("two rules for one host merge: the first's policy, the subsets of both", () => {
    const idx2 = indexOf(
      dr("default", "a", "reviews", LB("RANDOM") + `  subsets: [{name: v1, labels: {version: v1}}]\n`) +
        dr(
          "default",
          "b",
          "reviews",
          LB("ROUND_ROBIN") +
            `  subsets: [{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]\n`,
        ),
    );
    const v1 = resolveDestination(idx2, { host: REVIEWS, clientNamespace: "default", port: 1, subset: "v1" });
    const v2 = resolveDestination(idx2, { host: REVIEWS, clientNamespace: "default", port: 1, subset: "v2" });
    assert.equal(v1.lb.kind, "RANDOM");
    assert.deepEqual(v1.subsetLabels, { version: "v1" });
    assert.deepEqual(v2.subsetLabels, { version: "v2" });
  });
});

describe("policy merge: port-level settings and subsets", () => {
  const idx = indexOf(
    dr(
      "default",
      "reviews",
      "reviews",
      `  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool: {tcp: {maxConnections: 100}}
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {simple: RANDOM}
    - port: {number: 9091}
      connectionPool: {http: {http2MaxRequests: 7}}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2, track: stable}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: x-user}}
      portLevelSettings:
      - port: {number: 9090}
        outlierDetection: {consecutive5xxErrors: 9}
`,
    ),
  );
  const q = (port: number, subset?: string) =>
    resolveDestination(idx, {
      host: REVIEWS,
      clientNamespace: "default",
      port,
      ...(subset ? { subset } : {}),
    });

  test("top level for a port without settings", () => {
    const p = q(9080);
    assert.equal(p.lb.kind, "ROUND_ROBIN");
    assert.equal(p.connectionPool.maxConnections, 100);
    assert.equal(p.outlier?.consecutive5xxErrors, 3);
    assert.equal(p.subsetLabels, undefined);
    assert.equal(p.unknownSubset, undefined);
  });

  test("a port's settings replace the top-level field they set, the others stay", () => {
    const p = q(9090);
    assert.equal(p.lb.kind, "RANDOM");
    assert.equal(p.connectionPool.maxConnections, 100);
    assert.equal(p.outlier?.consecutive5xxErrors, 3);
  });

  test("a port-level connectionPool replaces the whole top-level one (no field inheritance)", () => {
    const p = q(9091);
    assert.equal(p.connectionPool.http2MaxRequests, 7);
    assert.equal(p.connectionPool.maxConnections, 2 ** 32 - 1);
  });

  test("a subset without a policy inherits the top level (and the port's settings)", () => {
    const p = q(9090, "v1");
    assert.equal(p.lb.kind, "RANDOM");
    assert.deepEqual(p.subsetLabels, { version: "v1" });
  });

  test("a subset's policy overrides the top level and its port settings", () => {
    const p = q(9080, "v2");
    assert.equal(p.lb.kind, "RING_HASH");
    assert.equal(p.outlier?.consecutive5xxErrors, 3);
    assert.deepEqual(p.subsetLabels, { version: "v2", track: "stable" });
    const p9090 = q(9090, "v2");
    assert.equal(p9090.lb.kind, "RING_HASH", "subset top level beats the parent's port-level");
    assert.equal(p9090.outlier?.consecutive5xxErrors, 9, "subset port-level beats all");
    assert.equal(p9090.connectionPool.maxConnections, 100);
  });

  test("an unknown subset is flagged (the caller answers 503)", () => {
    const p = q(9080, "v3");
    assert.equal(p.unknownSubset, true);
    assert.equal(p.subsetLabels, undefined);
    assert.equal(
      resolveDestination(indexOf(dr("x", "y", "z")), {
        host: REVIEWS,
        clientNamespace: "default",
        port: 1,
        subset: "v1",
      }).unknownSubset,
      true,
      "no rule at all: every subset is unknown",
    );
  });

  test("matchesSubset: every subset label must be on the endpoint", () => {
    assert.ok(
      matchesSubset({ version: "v2", track: "stable", app: "r" }, { version: "v2", track: "stable" }),
    );
    assert.ok(!matchesSubset({ version: "v2" }, { version: "v2", track: "stable" }));
    assert.ok(matchesSubset({ version: "v2" }, undefined));
  });

  test("client TLS settings come through", () => {
    const idx2 = indexOf(
      dr("default", "tls", "reviews", `  trafficPolicy: {tls: {mode: SIMPLE, sni: r.example}}\n`),
    );
    const p = resolveDestination(idx2, { host: REVIEWS, clientNamespace: "default", port: 1 });
    assert.equal(p.tls?.mode, "SIMPLE");
    assert.equal(p.tls?.sni, "r.example");
  });
});
