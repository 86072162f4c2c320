// VirtualService at the waypoint: host selection (short names, FQDN, wildcards, namespaces),
// Gateway API precedence over it, uri/header/method/query matches in order, and the mapping of
// destinations, weights, headers, rewrite, redirect, direct response, retries, fault, timeout
// and mirrors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { selectRoute } from "../../../../src/model/routing/index.js";
import { compileYaml, req } from "./helpers.js";

const vs = (name: string, spec: string, ns = "default"): string => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec}
---`;

describe("host selection", () => {
  test("short names resolve in the VirtualService's namespace; FQDN and wildcards match", () => {
    const idx = compileYaml(
      vs("short", `  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews-v1}}]\n`) +
        vs(
          "fqdn",
          `  hosts: [ratings.default.svc.cluster.local]\n  http:\n  - route: [{destination: {host: ratings}}]\n`,
        ) +
        vs(
          "wild",
          `  hosts: ["*.other.svc.cluster.local"]\n  http:\n  - route: [{destination: {host: shadow.other.svc.cluster.local}}]\n`,
          "other",
        ) +
        vs(
          "elsewhere",
          `  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews-v1}}]\n`,
          "other",
        ),
    );
    assert.equal(selectRoute(idx, req("/"))?.route, "VirtualService/default/short#0");
    assert.equal(
      selectRoute(idx, req("/", { service: "default/ratings" }))?.route,
      "VirtualService/default/fqdn#0",
    );
    assert.equal(
      selectRoute(idx, req("/", { service: "other/shadow", port: 80 }))?.route,
      "VirtualService/other/wild#0",
    );
    // reviews.other.svc.cluster.local is no Service; default/echo is named by nobody.
    assert.equal(selectRoute(idx, req("/", { service: "default/echo", port: 7070 })), null);
  });

  test("VirtualServices outside the Service's (and waypoint's) namespace, or bound to gateways only, do not apply", () => {
    const idx = compileYaml(
      vs(
        "cross",
        `  hosts: [reviews.default.svc.cluster.local]\n  http:\n  - route: [{destination: {host: reviews-v1.default.svc.cluster.local}}]\n`,
        "other",
      ) +
        vs(
          "gw",
          `  hosts: [ratings]\n  gateways: [istio-system/ingress]\n  http:\n  - route: [{destination: {host: ratings}}]\n`,
        ),
    );
    assert.equal(selectRoute(idx, req("/")), null);
    assert.equal(selectRoute(idx, req("/", { service: "default/ratings" })), null);
    const fromWaypointNs = compileYaml(
      vs(
        "cross",
        `  hosts: [reviews.default.svc.cluster.local]\n  http:\n  - route: [{destination: {host: reviews-v1.default.svc.cluster.local}}]\n`,
        "other",
      ),
      { waypointNamespace: "other" },
    );
    assert.equal(selectRoute(fromWaypointNs, req("/"))?.route, "VirtualService/other/cross#0");
  });

  test("an attached HTTPRoute wins; the VirtualService is reported as overridden", () => {
    const idx = compileYaml(
      vs("v", `  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews-v1}}]\n`) +
        `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews-v2, port: 9080}]}]
`,
    );
    assert.equal(selectRoute(idx, req("/"))?.route, "HTTPRoute/default/r#0");
    assert.deepEqual(
      idx.problems.map((p) => [p.reason, p.resource]),
      [["OverriddenByGatewayAPI", "VirtualService default/v"]],
    );
  });

  test("several VirtualServices for one host merge, oldest first", () => {
    const idx = compileYaml(
      `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http: [{match: [{uri: {prefix: /b}}], route: [{destination: {host: reviews-v1}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default, creationTimestamp: "2024-02-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews-v2}}]}]
`,
    );
    assert.equal(selectRoute(idx, req("/b/x"))?.route, "VirtualService/default/b#0");
    assert.equal(selectRoute(idx, req("/a"))?.route, "VirtualService/default/a#0");
  });
});

describe("matches", () => {
  const idx = compileYaml(
    vs(
      "m",
      `  hosts: [reviews]
  http:
  - name: exact
    match: [{uri: {exact: /exact}}]
    route: [{destination: {host: reviews-v1}}]
  - name: regex
    match: [{uri: {regex: "/items/[0-9]+"}}]
    route: [{destination: {host: reviews-v1}}]
  - name: headers
    match:
    - headers: {End-User: {exact: jason}, x-trace: {}}
      withoutHeaders: {x-skip: {}}
    route: [{destination: {host: reviews-v1}}]
  - name: method
    match: [{method: {regex: "PUT|PATCH"}}]
    route: [{destination: {host: reviews-v1}}]
  - name: query
    match: [{queryParams: {v: {prefix: "2"}, flag: {}}}]
    route: [{destination: {host: reviews-v1}}]
  - name: case
    match: [{uri: {prefix: /CaSe}, ignoreUriCase: true}]
    route: [{destination: {host: reviews-v1}}]
  - name: port
    match: [{port: 9090, uri: {prefix: /admin}}]
    route: [{destination: {host: reviews-v1}}]
  - name: prefix
    match: [{uri: {prefix: /p}}, {uri: {prefix: /q}}]
    route: [{destination: {host: reviews-v1}}]
`,
    ),
  );
  const cases: [string, string, Parameters<typeof req>[1], string][] = [
    ["uri exact (query ignored)", "/exact?x=1", {}, "#0"],
    ["uri regex is a full match", "/items/12", {}, "#1"],
    ["uri regex rejects a partial match", "/items/12/x", {}, "none"],
    ["headers exact + presence", "/h", { headers: { "end-user": "jason", "x-trace": "1" } }, "#2"],
    [
      "withoutHeaders excludes",
      "/h",
      { headers: { "end-user": "jason", "x-trace": "1", "x-skip": "y" } },
      "none",
    ],
    ["method regex", "/m", { method: "PATCH" }, "#3"],
    ["query prefix + presence", "/q0?v=2.1&flag", {}, "#4"],
    ["ignoreUriCase", "/case/x", {}, "#5"],
    ["match.port must be the request's port", "/admin", { port: 9090 }, "#6"],
    ["match.port elsewhere does not match", "/admin", {}, "none"],
    ["plain string prefix (not element-wise), second match", "/qq", {}, "#7"],
  ];
  for (const [name, path, opts, want] of cases) {
    test(name, () => {
      const d = selectRoute(idx, req(path, opts));
      assert.equal(d?.route === "none" ? "none" : d?.route.slice(d.route.indexOf("#")), want);
    });
  }
});

describe("actions", () => {
  const idx = compileYaml(
    vs(
      "a",
      `  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /split}}]
    route:
    - destination: {host: reviews-v1, subset: v1}
      weight: 75
      headers: {request: {set: {X-Version: v1, Host: v1.example}}}
    - destination: {host: reviews-v2.default.svc.cluster.local, port: {number: 9080}}
      weight: 25
    - destination: {host: ratings}
      weight: 0
    headers:
      request: {add: {X-Route: split}, remove: [X-Drop]}
      response: {set: {Cache-Control: no-store}}
    timeout: 1.5s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "gateway-error,reset,503"}
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 10}}
      abort: {httpStatus: 418, percentage: {value: 0.5}}
    mirror: {host: shadow.other.svc.cluster.local}
    mirrorPercentage: {value: 20}
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new, authority: new.example}
    route: [{destination: {host: reviews-v1}}]
  - match: [{uri: {prefix: /re}}]
    rewrite: {uriRegexRewrite: {match: "^/re/(.*)$", rewrite: "/x/\\\\1"}}
    retries: {attempts: 0}
    route: [{destination: {host: reviews-v1}}]
  - match: [{uri: {prefix: /go}}]
    redirect: {prefixRewrite: /went, authority: other.example, scheme: https}
  - match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418, body: {string: short and stout}}
  - match: [{uri: {prefix: /missing}}]
    route: [{destination: {host: nowhere}}]
  - route: [{destination: {host: reviews}}]
`,
    ),
  );

  test("weights, subsets, per-destination headers and authority, zero weights dropped", () => {
    const d = selectRoute(idx, req("/split"));
    assert.deepEqual(d?.backends, [
      {
        service: { namespace: "default", name: "reviews-v1" },
        host: "reviews-v1.default.svc.cluster.local",
        port: 9080,
        weight: 75,
        subset: "v1",
        requestHeaders: { set: [{ name: "x-version", value: "v1" }], add: [], remove: [] },
        hostRewrite: "v1.example",
      },
      {
        service: { namespace: "default", name: "reviews-v2" },
        host: "reviews-v2.default.svc.cluster.local",
        port: 9080,
        weight: 25,
      },
    ]);
    assert.deepEqual(d?.requestHeaders, {
      set: [],
      add: [{ name: "x-route", value: "split" }],
      remove: ["x-drop"],
    });
    assert.deepEqual(d?.responseHeaders, {
      set: [{ name: "cache-control", value: "no-store" }],
      add: [],
      remove: [],
    });
  });

  test("timeout, retries (codes split out of retryOn), fault and mirror", () => {
    const d = selectRoute(idx, req("/split"));
    assert.deepEqual(d?.timeouts, { requestMs: 1500 });
    assert.deepEqual(d?.retries, {
      attempts: 3,
      retryOn: ["gateway-error", "reset", "retriable-status-codes"],
      retriableStatusCodes: [503],
      perTryTimeoutMs: 500,
      retryIgnorePreviousHosts: true,
    });
    assert.deepEqual(d?.fault, {
      delay: { ms: 2000, percent: 10 },
      abort: { httpStatus: 418, percent: 0.5 },
    });
    assert.deepEqual(
      d?.mirrors.map((m) => [m.backend.host, m.backend.port, m.percent]),
      [["shadow.other.svc.cluster.local", 80, 20]],
    );
  });

  test("rewrite: prefix swap (Envoy prefix_rewrite) and authority; regex rewrite; attempts 0 disables retries", () => {
    assert.deepEqual(selectRoute(idx, req("/old/x"))?.rewrite, {
      hostname: "new.example",
      path: { type: "ReplacePrefix", value: "/new", matchedPrefix: "/old" },
    });
    const re = selectRoute(idx, req("/re/a/b"));
    assert.equal(re?.rewrite?.path?.type, "RegexReplace");
    assert.equal(re?.retries, undefined);
    const dflt = selectRoute(idx, req("/old"));
    assert.deepEqual(dflt?.retries?.retryOn, [
      "connect-failure",
      "refused-stream",
      "unavailable",
      "cancelled",
      "retriable-status-codes",
    ]);
  });

  test("redirect defaults to 301; direct response; unknown destination host is a 503 share", () => {
    assert.deepEqual(selectRoute(idx, req("/go/x"))?.redirect, {
      scheme: "https",
      hostname: "other.example",
      path: { type: "ReplacePrefix", value: "/went", matchedPrefix: "/go" },
      statusCode: 301,
    });
    assert.deepEqual(selectRoute(idx, req("/teapot"))?.directResponse, {
      status: 418,
      body: "short and stout",
      reason: "direct_response",
    });
    const missing = selectRoute(idx, req("/missing"));
    assert.deepEqual(missing?.backends, []);
    assert.deepEqual(missing?.invalidBackends, [{ weight: 1, status: 503, reason: "backend_not_found" }]);
    assert.ok(
      idx.problems.some(
        (p) => p.reason === "BackendNotFound" && p.path === "spec.http[5].route[0].destination",
      ),
    );
  });

  test("a destination without a port uses the request's port when the Service has several", () => {
    assert.equal(selectRoute(idx, req("/other", { port: 9090 }))?.backends[0]?.port, 9090);
    assert.equal(selectRoute(idx, req("/other", { port: 9080 }))?.backends[0]?.port, 9080);
  });
});
