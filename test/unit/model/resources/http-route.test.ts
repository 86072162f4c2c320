// HTTPRoute: ingress and mesh (GAMMA) routes load with the CRD defaults; match, filter, backend
// and rule-level CEL rules are enforced with exact field paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { HTTPRouteSpec } from "../../../../src/model/resources/gateway.js";
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

const BOOKINFO = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bookinfo
  namespace: bookinfo
spec:
  parentRefs:
  - name: bookinfo-gateway
    namespace: istio-ingress
    sectionName: http
  hostnames: ["bookinfo.example.com", "*.bookinfo.example.com"]
  rules:
  - name: productpage
    matches:
    - path:
        type: Exact
        value: /productpage
    - path:
        type: PathPrefix
        value: /static
    - path:
        value: /login
      method: POST
    - headers:
      - name: end-user
        value: jason
      queryParams:
      - name: debug
        type: RegularExpression
        value: "^[01]$"
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: x-env
          value: prod
        remove: [x-debug]
    backendRefs:
    - name: productpage
      port: 9080
  - matches:
    - path:
        type: PathPrefix
        value: /api/v1
    filters:
    - type: URLRewrite
      urlRewrite:
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /
    backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 90
    - name: reviews-v2
      port: 9080
      weight: 10
      filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier:
          add:
          - name: x-canary
            value: "true"
    timeouts:
      request: 10s
      backendRequest: 2s
  - matches:
    - path:
        type: PathPrefix
        value: /old
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: new.example.com
  - matches:
    - path:
        type: RegularExpression
        value: "/users/[0-9]+/profile"
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: users-shadow
          port: 8080
        fraction:
          numerator: 5
    - type: CORS
      cors:
        allowOrigins: ["https://app.example.com"]
        allowMethods: [GET, POST]
        allowHeaders: [x-user]
    - type: ExtensionRef
      extensionRef:
        group: networking.example.io
        kind: RateLimit
        name: per-user
    backendRefs:
    - name: users
      port: 8080
`;

const MESH = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  namespace: bookinfo
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  rules:
  - backendRefs:
    - name: reviews-v1
      port: 9080
`;

describe("HTTPRoute", () => {
  test("the bookinfo ingress route loads with the CRD defaults", () => {
    const spec = specOf<HTTPRouteSpec>(BOOKINFO);
    assert.deepEqual(spec.parentRefs?.[0], {
      group: "gateway.networking.k8s.io",
      kind: "Gateway",
      name: "bookinfo-gateway",
      namespace: "istio-ingress",
      sectionName: "http",
    });
    const [exact, prefix, login, headers] = spec.rules[0]?.matches ?? [];
    assert.deepEqual(exact?.path, { type: "Exact", value: "/productpage" });
    assert.deepEqual(prefix?.path, { type: "PathPrefix", value: "/static" });
    assert.deepEqual(login?.path, { type: "PathPrefix", value: "/login" });
    assert.deepEqual(headers?.path, { type: "PathPrefix", value: "/" });
    assert.deepEqual(headers?.headers, [{ type: "Exact", name: "end-user", value: "jason" }]);
    assert.deepEqual(spec.rules[0]?.backendRefs?.[0], {
      group: "",
      kind: "Service",
      name: "productpage",
      port: 9080,
      weight: 1,
    });
    assert.equal(spec.rules[2]?.filters?.[0]?.requestRedirect?.statusCode, 302);
    assert.equal(spec.rules[3]?.filters?.[0]?.requestMirror?.fraction?.denominator, 100);
    assert.equal(spec.rules[3]?.filters?.[1]?.cors?.maxAge, 5);
  });

  test("a mesh route attached to a Service loads; a rule without matches matches PathPrefix /", () => {
    const spec = specOf<HTTPRouteSpec>(MESH);
    assert.deepEqual(spec.parentRefs?.[0], { group: "", kind: "Service", name: "reviews", port: 9080 });
    assert.deepEqual(spec.rules[0]?.matches, [{ path: { type: "PathPrefix", value: "/" } }]);
  });

  test("a route without rules gets the default rule", () => {
    const spec = specOf<HTTPRouteSpec>(withChanges(parse(MESH) as Manifest, { "spec.rules": DELETE }));
    assert.deepEqual(spec.rules, [{ matches: [{ path: { type: "PathPrefix", value: "/" } }] }]);
  });

  const base = parse(BOOKINFO) as Manifest;
  const R = "HTTPRoute bookinfo/bookinfo";
  const M = "spec.rules[0].matches";
  const F = "spec.rules[0].filters";
  const mistakes: Mistake[] = [
    { name: "unknown field", set: { "spec.routes": [] }, code: "AMBIT_E_UNKNOWN_FIELD", path: "spec.routes" },
    {
      name: "unknown rule field",
      set: { "spec.rules[0].match": [] },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.rules[0].match",
    },
    {
      name: "parentRef without name",
      set: { "spec.parentRefs[0].name": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.parentRefs[0].name",
    },
    {
      name: "parentRef port 0",
      set: { "spec.parentRefs[0].port": 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.parentRefs[0].port",
    },
    {
      name: "parentRef kind malformed",
      set: { "spec.parentRefs[0].kind": "1Gateway" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.parentRefs[0].kind",
    },
    {
      name: "parentRef namespace malformed",
      set: { "spec.parentRefs[0].namespace": "Istio_Ingress" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.parentRefs[0].namespace",
    },
    {
      name: "hostname '*'",
      set: { "spec.hostnames[0]": "*" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hostnames[0]",
    },
    {
      name: "hostname upper case",
      set: { "spec.hostnames[0]": "Bookinfo.example.com" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hostnames[0]",
    },
    {
      name: "bad path type",
      set: { [`${M}[0].path.type`]: "Prefix" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[0].path.type`,
    },
    {
      name: "prefix without '/'",
      set: { [`${M}[1].path.value`]: "static" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[1].path.value`,
    },
    {
      name: "exact path with '//'",
      set: { [`${M}[0].path.value`]: "/product//page" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[0].path.value`,
    },
    {
      name: "path with a space",
      set: { [`${M}[0].path.value`]: "/product page" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[0].path.value`,
    },
    {
      name: "regex path with lookbehind",
      set: { [`${M}[0].path`]: { type: "RegularExpression", value: "(?<=/a)/b" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[0].path.value`,
    },
    {
      name: "bad method",
      set: { [`${M}[2].method`]: "FETCH" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[2].method`,
    },
    {
      name: "header match without name",
      set: { [`${M}[3].headers[0].name`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${M}[3].headers[0].name`,
    },
    {
      name: "header match empty value",
      set: { [`${M}[3].headers[0].value`]: "" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[3].headers[0].value`,
    },
    {
      name: "header match name invalid",
      set: { [`${M}[3].headers[0].name`]: "end user" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[3].headers[0].name`,
    },
    {
      name: "duplicate header matches",
      set: { [`${M}[3].headers[1]`]: { name: "end-user", value: "bob" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[3].headers[1].name`,
    },
    {
      name: "headers as a map",
      set: { [`${M}[3].headers`]: { "end-user": "jason" } },
      code: "AMBIT_E_INVALID_TYPE",
      path: `${M}[3].headers`,
    },
    {
      name: "query regex does not compile",
      set: { [`${M}[3].queryParams[0].value`]: "[01" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}[3].queryParams[0].value`,
    },
    {
      name: "filter without its config",
      set: { [`${F}[0].requestHeaderModifier`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${F}[0].requestHeaderModifier`,
    },
    {
      name: "filter with another type's config",
      set: { [`${F}[0].responseHeaderModifier`]: { remove: ["server"] } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${F}[0].responseHeaderModifier`,
    },
    {
      name: "unknown filter type",
      set: { [`${F}[0].type`]: "HeaderModifier" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${F}[0].type`,
    },
    {
      name: "filter type missing",
      set: { [`${F}[0].type`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${F}[0].type`,
    },
    {
      name: "repeated header modifier",
      set: { [`${F}[1]`]: { type: "RequestHeaderModifier", requestHeaderModifier: { remove: ["a"] } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${F}[1].type`,
    },
    {
      name: "duplicate header set",
      set: { [`${F}[0].requestHeaderModifier.set[1]`]: { name: "x-env", value: "dev" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${F}[0].requestHeaderModifier.set[1].name`,
    },
    {
      name: "redirect and rewrite on one rule",
      set: { "spec.rules[2].filters[1]": { type: "URLRewrite", urlRewrite: { hostname: "x.example.com" } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[2].filters[1].type",
    },
    {
      name: "redirect with backendRefs",
      set: { "spec.rules[2].backendRefs": [{ name: "old", port: 80 }] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[2].filters[0]",
    },
    {
      name: "redirect status 305",
      set: { "spec.rules[2].filters[0].requestRedirect.statusCode": 305 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[2].filters[0].requestRedirect.statusCode",
    },
    {
      name: "redirect scheme ftp",
      set: { "spec.rules[2].filters[0].requestRedirect.scheme": "ftp" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[2].filters[0].requestRedirect.scheme",
    },
    {
      name: "ReplacePrefixMatch with an Exact match",
      set: { "spec.rules[1].matches[0].path.type": "Exact" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].matches",
    },
    {
      name: "path modifier value for the other type",
      set: { "spec.rules[1].filters[0].urlRewrite.path.replaceFullPath": "/x" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].filters[0].urlRewrite.path.replaceFullPath",
    },
    {
      name: "Service backend without port",
      set: { "spec.rules[0].backendRefs[0].port": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.rules[0].backendRefs[0].port",
    },
    {
      name: "backend weight too large",
      set: { "spec.rules[1].backendRefs[0].weight": 1000001 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].backendRefs[0].weight",
    },
    {
      name: "backend weight as string",
      set: { "spec.rules[1].backendRefs[0].weight": "90" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.rules[1].backendRefs[0].weight",
    },
    {
      name: "backend name empty",
      set: { "spec.rules[1].backendRefs[0].name": "" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].backendRefs[0].name",
    },
    {
      name: "timeout without unit",
      set: { "spec.rules[1].timeouts.request": "10" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].timeouts.request",
    },
    {
      name: "backend timeout above request timeout",
      set: { "spec.rules[1].timeouts.backendRequest": "1m" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].timeouts.backendRequest",
    },
    {
      name: "mirror percent and fraction",
      set: { "spec.rules[3].filters[0].requestMirror.percent": 10 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[3].filters[0].requestMirror.fraction",
    },
    {
      name: "mirror fraction above 1",
      set: { "spec.rules[3].filters[0].requestMirror.fraction.numerator": 200 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[3].filters[0].requestMirror.fraction.numerator",
    },
    {
      name: "CORS wildcard origin with others",
      set: { "spec.rules[3].filters[1].cors.allowOrigins[1]": "*" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[3].filters[1].cors.allowOrigins",
    },
    {
      name: "extensionRef without group",
      set: { "spec.rules[3].filters[2].extensionRef.group": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.rules[3].filters[2].extensionRef.group",
    },
    { name: "rules empty", set: { "spec.rules": [] }, code: "AMBIT_E_INVALID_VALUE", path: "spec.rules" },
    {
      name: "rules as an object",
      set: { "spec.rules": { name: "x" } },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.rules",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(base, R, m));

  test("more than 16 rules is reported", () => {
    const rules = Array.from({ length: 17 }, () => ({ backendRefs: [{ name: "a", port: 80 }] }));
    assertProblems(load(withChanges(parse(MESH) as Manifest, { "spec.rules": rules })), [
      { code: "AMBIT_E_INVALID_VALUE", path: "spec.rules", resource: "HTTPRoute bookinfo/reviews", index: 0 },
    ]);
  });
});
