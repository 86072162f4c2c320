// HTTPRoute at the waypoint: GAMMA attachment (Service parents, ports, namespaces), Gateway API
// precedence across rules and routes, backends (weights, invalid refs), filters, timeouts and
// Istio's retry translation.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { selectRoute } from "../../../../src/model/routing/index.js";
import { compileYaml, req } from "./helpers.js";

const route = (name: string, body: string, meta = ""): string => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ${name}
  namespace: default
${meta}
spec:
${body}
---`;

const toReviews = (port = "") => `  parentRefs:
  - group: ""
    kind: Service
    name: reviews
${port}`;

describe("attachment", () => {
  test("a Service parent attaches on every port; other Services and Gateway parents do not", () => {
    const idx = compileYaml(
      route("r", `${toReviews()}  rules:\n  - backendRefs:\n    - name: reviews-v1\n      port: 9080\n`) +
        route(
          "gw",
          `  parentRefs:\n  - name: ingress\n  rules:\n  - backendRefs:\n    - name: ratings\n      port: 9080\n`,
        ),
    );
    assert.equal(selectRoute(idx, req("/"))?.route, "HTTPRoute/default/r#0");
    assert.equal(selectRoute(idx, req("/", { port: 9090 }))?.route, "HTTPRoute/default/r#0");
    assert.equal(selectRoute(idx, req("/", { service: "default/ratings" })), null);
    assert.deepEqual(idx.problems, []);
  });

  test("port and sectionName restrict the Service port; a missing port is a problem", () => {
    const idx = compileYaml(
      route(
        "by-port",
        `${toReviews("    port: 9090\n")}  rules:\n  - backendRefs:\n    - name: reviews-v1\n      port: 9080\n`,
      ) +
        route(
          "by-name",
          `  parentRefs:\n  - group: ""\n    kind: Service\n    name: ratings\n    sectionName: http\n  rules:\n  - backendRefs:\n    - name: ratings\n      port: 9080\n`,
        ) +
        route(
          "bad-port",
          `${toReviews("    port: 1234\n")}  rules:\n  - backendRefs:\n    - name: reviews-v1\n      port: 9080\n`,
        ),
    );
    assert.equal(selectRoute(idx, req("/", { port: 9080 })), null);
    assert.equal(selectRoute(idx, req("/", { port: 9090 }))?.route, "HTTPRoute/default/by-port#0");
    assert.equal(
      selectRoute(idx, req("/", { service: "default/ratings" }))?.route,
      "HTTPRoute/default/by-name#0",
    );
    assert.deepEqual(
      idx.problems.map((p) => [p.reason, p.resource, p.path]),
      [["NoMatchingParent", "HTTPRoute default/bad-port", "spec.parentRefs[0]"]],
    );
  });

  test("consumer routes: ignored unless in the waypoint's namespace, which then takes precedence", () => {
    const consumer = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: consumer, namespace: client}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, namespace: default}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: reviews-v2, namespace: default, port: 9080}]
---`;
    const producer = route(
      "producer",
      `${toReviews()}  rules:\n  - matches: [{path: {type: Exact, value: /exact}}]\n    backendRefs: [{name: reviews-v1, port: 9080}]\n`,
    );
    const without = compileYaml(consumer + producer);
    assert.equal(selectRoute(without, req("/other"))?.route, "none");
    assert.deepEqual(
      without.problems.map((p) => [p.reason, p.resource]),
      [["ConsumerRouteIgnored", "HTTPRoute client/consumer"]],
    );
    const waypointThere = compileYaml(consumer + producer, { waypointNamespace: "client" });
    // The consumer route's catch-all wins over the producer's more specific exact match.
    assert.equal(selectRoute(waypointThere, req("/exact"))?.route, "HTTPRoute/client/consumer#0");
    assert.deepEqual(waypointThere.problems, []);
  });

  test("a parent Service that does not exist is reported", () => {
    const idx = compileYaml(route("r", `  parentRefs: [{group: "", kind: Service, name: nope}]\n`));
    assert.deepEqual(
      idx.problems.map((p) => p.reason),
      ["NoMatchingParent"],
    );
  });
});

describe("precedence", () => {
  const rules = `${toReviews()}  rules:
  - name: prefix-short
    matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: prefix-long
    matches: [{path: {type: PathPrefix, value: /api/v2/}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: exact
    matches: [{path: {type: Exact, value: /api/v2/items}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: regex
    matches: [{path: {type: RegularExpression, value: "/api/v[0-9]+/items"}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: method
    matches: [{path: {type: PathPrefix, value: /api}, method: POST}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: headers
    matches:
    - path: {type: PathPrefix, value: /api}
      headers: [{name: X-User, value: jason}, {name: x-env, type: RegularExpression, value: "prod|stage"}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: query
    matches:
    - path: {type: PathPrefix, value: /api}
      queryParams: [{name: debug, value: "1"}]
    backendRefs: [{name: reviews-v1, port: 9080}]
`;
  const idx = compileYaml(route("p", rules));
  const cases: [string, string, Parameters<typeof req>[1], string][] = [
    ["exact beats every prefix", "/api/v2/items", {}, "#2"],
    ["exact ignores the query", "/api/v2/items?x=1", {}, "#2"],
    ["longest prefix wins", "/api/v2/other", {}, "#1"],
    ["prefix is element-wise, trailing slash ignored", "/api/v2", {}, "#1"],
    ["/apix does not match /api", "/apix", {}, "none"],
    ["regex ranks below prefixes", "/api/v3/items", { method: "POST" }, "#4"],
    [
      "method beats headers",
      "/api/x",
      { method: "POST", headers: { "x-user": "jason", "x-env": "prod" } },
      "#4",
    ],
    [
      "headers (case-insensitive names, regex full match)",
      "/api/x",
      { headers: { "x-user": "jason", "x-env": "prod" } },
      "#5",
    ],
    [
      "regex header must match the whole value",
      "/api/x",
      { headers: { "x-user": "jason", "x-env": "production" } },
      "#0",
    ],
    ["query params count last", "/api/x?debug=1", {}, "#6"],
    ["first value of a repeated query parameter", "/api/x?debug=0&debug=1", {}, "#0"],
    ["plain prefix", "/api", {}, "#0"],
  ];
  for (const [name, path, opts, want] of cases) {
    test(name, () => {
      const d = selectRoute(idx, req(path, opts));
      assert.equal(d?.route === "none" ? "none" : d?.route.slice(d.route.indexOf("#")), want);
    });
  }

  test("ties: the oldest route, then namespace/name, then rule order", () => {
    const same = `${toReviews()}  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n    backendRefs: [{name: reviews-v1, port: 9080}]\n`;
    const older = compileYaml(
      route("b-new", same, "  creationTimestamp: '2024-02-01T00:00:00Z'") +
        route("z-old", same, "  creationTimestamp: '2024-01-01T00:00:00Z'"),
    );
    assert.equal(selectRoute(older, req("/"))?.route, "HTTPRoute/default/z-old#0");
    const byName = compileYaml(route("b", same) + route("a", same));
    assert.equal(selectRoute(byName, req("/"))?.route, "HTTPRoute/default/a#0");
  });

  test("rules default to PathPrefix / and an unmatched request is a 404", () => {
    const idx2 = compileYaml(
      route(
        "r",
        `${toReviews()}  rules:\n  - matches: [{path: {type: Exact, value: /only}}]\n    backendRefs: [{name: reviews-v1, port: 9080}]\n`,
      ),
    );
    const d = selectRoute(idx2, req("/else"));
    assert.equal(d?.kind, "none");
    assert.deepEqual(d?.directResponse, { status: 404, reason: "route_not_found" });
    const dflt = compileYaml(
      route("r", `${toReviews()}  rules:\n  - backendRefs: [{name: reviews-v1, port: 9080}]\n`),
    );
    assert.equal(selectRoute(dflt, req("/anything"))?.route, "HTTPRoute/default/r#0");
  });
});

describe("backends", () => {
  test("weights, zero weights dropped, per-backend header filters, cross-namespace refs allowed", () => {
    const idx = compileYaml(
      route(
        "w",
        `${toReviews()}  rules:
  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 90}
    - name: reviews-v2
      port: 9080
      weight: 10
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {set: [{name: X-Canary, value: "yes"}]}
    - {name: ratings, port: 9080, weight: 0}
    - {name: shadow, namespace: other, port: 80, weight: 5}
`,
      ),
    );
    const d = selectRoute(idx, req("/"));
    assert.deepEqual(
      d?.backends.map((b) => [`${b.service.namespace}/${b.service.name}`, b.port, b.weight, b.host]),
      [
        ["default/reviews-v1", 9080, 90, "reviews-v1.default.svc.cluster.local"],
        ["default/reviews-v2", 9080, 10, "reviews-v2.default.svc.cluster.local"],
        ["other/shadow", 80, 5, "shadow.other.svc.cluster.local"],
      ],
    );
    assert.deepEqual(d?.backends[1]?.requestHeaders, {
      set: [{ name: "x-canary", value: "yes" }],
      add: [],
      remove: [],
    });
    assert.deepEqual(d?.invalidBackends, []);
  });

  test("invalid backends keep their share as 500s and are reported", () => {
    const idx = compileYaml(
      route(
        "bad",
        `${toReviews()}  rules:
  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 3}
    - {name: missing, port: 9080, weight: 1}
    - {name: reviews-v2, port: 1, weight: 1}
    - {group: networking.istio.io, kind: ServiceEntry, name: ext, weight: 1}
`,
      ),
    );
    const d = selectRoute(idx, req("/"));
    assert.equal(d?.backends.length, 1);
    assert.deepEqual(
      d?.invalidBackends.map((b) => [b.weight, b.status, b.reason]),
      [
        [1, 500, "backend_not_found"],
        [1, 500, "backend_not_found"],
        [1, 500, "invalid_backend_kind"],
      ],
    );
    assert.deepEqual(
      idx.problems.map((p) => [p.reason, p.path]),
      [
        ["BackendNotFound", "spec.rules[0].backendRefs[1]"],
        ["BackendNotFound", "spec.rules[0].backendRefs[2]"],
        ["InvalidKind", "spec.rules[0].backendRefs[3]"],
      ],
    );
  });

  test("no backend with weight > 0 is a 500 direct response", () => {
    const idx = compileYaml(
      route(
        "z",
        `${toReviews()}  rules:\n  - matches: [{path: {value: /none}}]\n  - backendRefs: [{name: reviews-v1, port: 9080, weight: 0}]\n`,
      ),
    );
    assert.deepEqual(selectRoute(idx, req("/none"))?.directResponse, { status: 500, reason: "no_backends" });
    assert.deepEqual(selectRoute(idx, req("/x"))?.directResponse, { status: 500, reason: "no_backends" });
  });
});

describe("filters, timeouts and retries", () => {
  test("header modifiers, mirror with percent/fraction, URL rewrite with the matched prefix", () => {
    const idx = compileYaml(
      route(
        "f",
        `${toReviews()}  rules:
  - matches: [{path: {type: PathPrefix, value: /old/}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Env, value: prod}]
        add: [{name: X-Trace, value: a}]
        remove: [X-Debug]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {remove: [Server]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, namespace: other, port: 80}, percent: 25}
    - type: RequestMirror
      requestMirror: {backendRef: {name: ratings, port: 9080}, fraction: {numerator: 1, denominator: 8}}
    - type: URLRewrite
      urlRewrite: {hostname: new.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    backendRefs: [{name: reviews-v1, port: 9080}]
`,
      ),
    );
    const d = selectRoute(idx, req("/old/x"));
    assert.deepEqual(d?.requestHeaders, {
      set: [{ name: "x-env", value: "prod" }],
      add: [{ name: "x-trace", value: "a" }],
      remove: ["x-debug"],
    });
    assert.deepEqual(d?.responseHeaders, { set: [], add: [], remove: ["server"] });
    assert.deepEqual(
      d?.mirrors.map((m) => [m.backend.host, m.backend.port, m.percent]),
      [
        ["shadow.other.svc.cluster.local", 80, 25],
        ["ratings.default.svc.cluster.local", 9080, 12.5],
      ],
    );
    assert.deepEqual(d?.rewrite, {
      hostname: "new.example.com",
      path: { type: "ReplacePrefixMatch", value: "/new", matchedPrefix: "/old" },
    });
  });

  test("a redirect rule: defaults to 302 and the request's port; no backends", () => {
    const idx = compileYaml(
      route(
        "rd",
        `${toReviews()}  rules:
  - matches: [{path: {value: /a}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /b}}}]
  - matches: [{path: {value: /s}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https, hostname: secure.example.com, statusCode: 301}}]
`,
      ),
    );
    assert.deepEqual(selectRoute(idx, req("/a"))?.redirect, {
      derivePort: "FROM_REQUEST_PORT",
      statusCode: 302,
      path: { type: "ReplaceFullPath", value: "/b" },
    });
    const s = selectRoute(idx, req("/s/x"));
    assert.deepEqual(s?.redirect, {
      scheme: "https",
      hostname: "secure.example.com",
      derivePort: "FROM_PROTOCOL_DEFAULT",
      statusCode: 301,
    });
    assert.deepEqual(s?.backends, []);
    assert.equal(s?.directResponse, undefined);
  });

  test("timeouts and retries as Istio translates them", () => {
    const idx = compileYaml(
      route(
        "t",
        `${toReviews()}  rules:
  - matches: [{path: {value: /default}}]
    timeouts: {request: 10s, backendRequest: 2s}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {value: /retry}}]
    retry: {codes: [503, 504], backoff: 100ms}
    timeouts: {request: 0s}
    backendRefs: [{name: reviews-v1, port: 9080}]
  - matches: [{path: {value: /noretry}}]
    retry: {attempts: 0}
    backendRefs: [{name: reviews-v1, port: 9080}]
`,
      ),
    );
    const dflt = selectRoute(idx, req("/default"));
    assert.deepEqual(dflt?.timeouts, { requestMs: 10000, backendRequestMs: 2000 });
    assert.deepEqual(dflt?.retries, {
      attempts: 2,
      retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"],
      retriableStatusCodes: [],
      retryIgnorePreviousHosts: true,
      perTryTimeoutMs: 2000,
    });
    const retry = selectRoute(idx, req("/retry"));
    assert.equal(retry?.timeouts, undefined);
    assert.deepEqual(retry?.retries, {
      attempts: 2,
      retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"],
      retriableStatusCodes: [503, 504],
      retryIgnorePreviousHosts: true,
      backoffMs: 100,
    });
    assert.equal(selectRoute(idx, req("/noretry"))?.retries, undefined);
  });
});
