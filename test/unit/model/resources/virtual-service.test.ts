// VirtualService: bookinfo-style HTTP, TCP and TLS routing loads with Istio's defaults; matches,
// actions, regexes, weights, hosts and delegation rules are enforced with exact field paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { VirtualServiceSpec } from "../../../../src/model/resources/networking.js";
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
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - name: jason
    match:
    - name: jason-on-reviews
      headers:
        end-user:
          exact: jason
        x-trace: {}
      uri:
        prefix: /reviews
      ignoreUriCase: true
      method:
        regex: "GET|HEAD"
      queryParams:
        debug:
          exact: "1"
      withoutHeaders:
        x-canary:
          regex: "*"
      sourceLabels:
        app: productpage
      port: 9080
    route:
    - destination:
        host: reviews
        subset: v2
        port:
          number: 9080
      headers:
        request:
          set:
            x-user: jason
        response:
          remove: [x-internal]
    timeout: 10s
    retries:
      attempts: 3
      perTryTimeout: 2s
      retryOn: gateway-error,connect-failure,refused-stream,503
    fault:
      delay:
        percentage:
          value: 0.1
        fixedDelay: 5s
    mirror:
      host: reviews
      subset: v3
    mirrorPercentage:
      value: 10
    corsPolicy:
      allowOrigins:
      - exact: https://example.com
      - regex: "https://.*\\\\.example\\\\.org"
      allowMethods: [GET, POST]
      allowHeaders: [x-user]
      maxAge: 24h
      allowCredentials: false
  - name: split
    route:
    - destination:
        host: reviews
        subset: v1
      weight: 75
    - destination:
        host: reviews
        subset: v3
      weight: 25
`;

const RATINGS = `
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: ratings
  namespace: bookinfo
spec:
  hosts: [ratings.bookinfo.svc.cluster.local]
  http:
  - match:
    - uri: {exact: /v1/old}
    redirect:
      uri: /v1/new
      authority: ratings.bookinfo.svc.cluster.local
  - match:
    - uri: {prefix: /health}
    directResponse:
      status: 200
      body: {string: ok}
  - match:
    - uri: {regex: "^/v2/(?P<id>[0-9]+)$"}
    rewrite:
      uriRegexRewrite:
        match: "^/v2/([0-9]+)$"
        rewrite: /v1/\\1
    route:
    - destination: {host: ratings.bookinfo.svc.cluster.local}
  - fault:
      abort:
        percentage: {value: 50}
        httpStatus: 503
    route:
    - destination: {host: ratings.bookinfo.svc.cluster.local, subset: v1}
`;

const MONGO = `
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: bookinfo-mongo
spec:
  hosts: [mongo.prod.svc.cluster.local, "*.tls.example.com"]
  tcp:
  - match:
    - port: 27017
      destinationSubnets: [10.0.0.0/8]
      sourceLabels: {app: ratings}
    route:
    - destination:
        host: mongo.backup.svc.cluster.local
        port: {number: 5555}
  tls:
  - match:
    - sniHosts: [a.tls.example.com]
      port: 443
    route:
    - destination: {host: a.internal}
  exportTo: ["."]
`;

describe("VirtualService", () => {
  test("the reviews routing (matches, headers, retries, fault, mirror, CORS, weights) loads", () => {
    const spec = specOf<VirtualServiceSpec>(REVIEWS);
    assert.equal(spec.http?.length, 2);
    assert.deepEqual(spec.http?.[0]?.match?.[0]?.uri, { prefix: "/reviews" });
    assert.deepEqual(spec.http?.[0]?.match?.[0]?.headers?.["x-trace"], {});
    assert.deepEqual(
      spec.http?.[1]?.route?.map((r) => r.weight),
      [75, 25],
    );
  });

  test("redirect (default code 301), direct response, regex rewrite with RE2 named groups, abort", () => {
    const spec = specOf<VirtualServiceSpec>(RATINGS);
    assert.equal(spec.http?.[0]?.redirect?.redirectCode, 301);
    assert.equal(spec.http?.[1]?.directResponse?.status, 200);
  });

  test("TCP and TLS routes load", () => {
    const spec = specOf<VirtualServiceSpec>(MONGO);
    assert.equal(spec.tcp?.[0]?.route[0]?.destination.port?.number, 5555);
  });

  test("a delegate VirtualService (no hosts) and its root load", () => {
    specOf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage-delegate}
spec:
  http:
  - match: [{uri: {prefix: /productpage}}]
    route: [{destination: {host: productpage}}]
`);
    specOf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root}
spec:
  hosts: [bookinfo.example.com]
  gateways: [istio-system/ingress, mesh]
  http:
  - match: [{uri: {prefix: /productpage}}]
    delegate: {name: productpage-delegate, namespace: bookinfo}
`);
  });

  const base = parse(REVIEWS) as Manifest;
  const R = "VirtualService bookinfo/reviews";
  const M = "spec.http[0].match[0]";
  const mistakes: Mistake[] = [
    {
      name: "unknown field",
      set: { "spec.host": "reviews" },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.host",
    },
    {
      name: "unknown match field",
      set: { [`${M}.path`]: { prefix: "/" } },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: `${M}.path`,
    },
    {
      name: "uri exact and prefix",
      set: { [`${M}.uri.exact`]: "/reviews" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.uri`,
    },
    { name: "uri empty", set: { [`${M}.uri`]: {} }, code: "AMBIT_E_INVALID_VALUE", path: `${M}.uri` },
    {
      name: "uri as a string",
      set: { [`${M}.uri`]: "/reviews" },
      code: "AMBIT_E_INVALID_TYPE",
      path: `${M}.uri`,
    },
    {
      name: "uri suffix",
      set: { [`${M}.uri`]: { prefix: "/r", suffix: "/x" } },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: `${M}.uri.suffix`,
    },
    {
      name: "uri regex does not compile",
      set: { [`${M}.uri`]: { regex: "/reviews/(" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.uri.regex`,
    },
    {
      name: "uri regex with a backreference",
      set: { [`${M}.uri`]: { regex: "/(a)\\1" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.uri.regex`,
    },
    {
      name: "method regex with lookahead",
      set: { [`${M}.method`]: { regex: "(?!DELETE).*" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.method.regex`,
    },
    {
      name: "empty scheme prefix",
      set: { [`${M}.scheme`]: { prefix: "" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.scheme.prefix`,
    },
    {
      name: "header match empty prefix",
      set: { [`${M}.headers.end-user`]: { prefix: "" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.headers.end-user.prefix`,
    },
    {
      name: "header name with a space",
      set: { [`${M}.headers`]: { "end user": { exact: "x" } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.headers["end user"]`,
    },
    {
      name: "query param match two kinds",
      set: { [`${M}.queryParams.debug.prefix`]: "1" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.queryParams.debug`,
    },
    { name: "match port 0", set: { [`${M}.port`]: 0 }, code: "AMBIT_E_INVALID_VALUE", path: `${M}.port` },
    {
      name: "source label value",
      set: { [`${M}.sourceLabels.app`]: "product page" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.sourceLabels.app`,
    },
    {
      name: "JWT claim routing in the mesh",
      set: { [`${M}.headers`]: { "@request.auth.claims.group": { exact: "admin" } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.headers["@request.auth.claims.group"]`,
    },
    {
      name: "route and redirect",
      set: { "spec.http[1].redirect": { uri: "/x" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].redirect",
    },
    {
      name: "route and directResponse",
      set: { "spec.http[1].directResponse": { status: 503 } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].directResponse",
    },
    {
      name: "no route, redirect or directResponse",
      set: { "spec.http[1].route": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.http[1].route",
    },
    {
      name: "negative weight",
      set: { "spec.http[1].route[0].weight": -5 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].route[0].weight",
    },
    {
      name: "weight as string",
      set: { "spec.http[1].route[0].weight": "75" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.http[1].route[0].weight",
    },
    {
      name: "weights all zero",
      set: { "spec.http[1].route[0].weight": 0, "spec.http[1].route[1].weight": 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].route",
    },
    {
      name: "destination missing",
      set: { "spec.http[1].route[0].destination": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.http[1].route[0].destination",
    },
    {
      name: "destination host missing",
      set: { "spec.http[1].route[0].destination.host": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.http[1].route[0].destination.host",
    },
    {
      name: "destination host '*'",
      set: { "spec.http[1].route[0].destination.host": "*" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].route[0].destination.host",
    },
    {
      name: "subset not a DNS label",
      set: { "spec.http[1].route[0].destination.subset": "v_1" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].route[0].destination.subset",
    },
    {
      name: "destination port out of range",
      set: { "spec.http[0].route[0].destination.port.number": 70000 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].route[0].destination.port.number",
    },
    {
      name: "destination port by name",
      set: { "spec.http[0].route[0].destination.port": { number: 9080, name: "http" } },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.http[0].route[0].destination.port.name",
    },
    {
      name: "setting a pseudo-header",
      set: { "spec.http[0].route[0].headers.request.set": { ":path": "/x" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: 'spec.http[0].route[0].headers.request.set[":path"]',
    },
    {
      name: "timeout without unit",
      set: { "spec.http[0].timeout": "10" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].timeout",
    },
    {
      name: "timeout as number",
      set: { "spec.http[0].timeout": 10 },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.http[0].timeout",
    },
    {
      name: "retry settings with 0 attempts",
      set: { "spec.http[0].retries.attempts": 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].retries.attempts",
    },
    {
      name: "unknown retryOn policy",
      set: { "spec.http[0].retries.retryOn": "5xx,sometimes" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].retries.retryOn",
    },
    {
      name: "fault without delay or abort",
      set: { "spec.http[0].fault": {} },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].fault",
    },
    {
      name: "delay percentage over 100",
      set: { "spec.http[0].fault.delay.percentage.value": 150 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].fault.delay.percentage.value",
    },
    {
      name: "abort status 700",
      set: { "spec.http[0].fault.abort": { httpStatus: 700 } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].fault.abort.httpStatus",
    },
    {
      name: "unknown gRPC status",
      set: { "spec.http[0].fault.abort": { grpcStatus: "NOPE" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].fault.abort.grpcStatus",
    },
    {
      name: "mirror and mirrors",
      set: { "spec.http[0].mirrors": [{ destination: { host: "reviews" } }] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].mirrors",
    },
    {
      name: "CORS method",
      set: { "spec.http[0].corsPolicy.allowMethods": ["FETCH"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].corsPolicy.allowMethods[0]",
    },
    {
      name: "host '*' in the mesh",
      set: { "spec.hosts": ["*"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hosts[0]",
    },
    {
      name: "overlapping hosts",
      set: { "spec.hosts": ["*.example.com", "a.example.com"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hosts[1]",
    },
    {
      name: "host malformed",
      set: { "spec.hosts": ["reviews_v1"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hosts[0]",
    },
    {
      name: "no routes at all",
      set: { "spec.http": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.http",
    },
    {
      name: "http as an object",
      set: { "spec.http": { route: [] } },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.http",
    },
    {
      name: "gateway name malformed",
      set: { "spec.gateways": ["istio-system/my_gateway"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.gateways[0]",
    },
    {
      name: "delegate VirtualService with gateways",
      set: { "spec.hosts": DELETE, "spec.gateways": ["mesh"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.gateways",
    },
    {
      name: "exportTo duplicate",
      set: { "spec.exportTo": [".", "."] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.exportTo[1]",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(base, R, m));

  const ratings = parse(RATINGS) as Manifest;
  const ratingMistakes: Mistake[] = [
    {
      name: "redirect code 200",
      set: { "spec.http[0].redirect.redirectCode": 200 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].redirect.redirectCode",
    },
    {
      name: "redirect scheme ftp",
      set: { "spec.http[0].redirect.scheme": "ftp" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].redirect.scheme",
    },
    {
      name: "empty redirect",
      set: { "spec.http[0].redirect": {} },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].redirect",
    },
    {
      name: "direct response status 99",
      set: { "spec.http[1].directResponse.status": 99 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].directResponse.status",
    },
    {
      name: "direct response without status",
      set: { "spec.http[1].directResponse.status": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.http[1].directResponse.status",
    },
    {
      name: "body string and bytes",
      set: { "spec.http[1].directResponse.body.bytes": "b2s=" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[1].directResponse.body.bytes",
    },
    {
      name: "rewrite uri and regex",
      set: { "spec.http[2].rewrite.uri": "/v1" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[2].rewrite.uriRegexRewrite",
    },
    {
      name: "rewrite regex bad",
      set: { "spec.http[2].rewrite.uriRegexRewrite.match": "^/v2/(?<=x)" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[2].rewrite.uriRegexRewrite.match",
    },
    {
      name: "rewrite regex without rewrite",
      set: { "spec.http[2].rewrite.uriRegexRewrite.rewrite": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.http[2].rewrite.uriRegexRewrite.rewrite",
    },
    {
      name: "fault with redirect",
      set: { "spec.http[0].fault": { abort: { httpStatus: 500 } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.http[0].fault",
    },
  ];
  for (const m of ratingMistakes)
    test(`mistake: ${m.name}`, () => checkMistake(ratings, "VirtualService bookinfo/ratings", m));

  const mongo = parse(MONGO) as Manifest;
  const l4Mistakes: Mistake[] = [
    {
      name: "TCP route without destinations",
      set: { "spec.tcp[0].route": [] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.tcp[0].route",
    },
    {
      name: "TCP route missing",
      set: { "spec.tcp[0].route": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.tcp[0].route",
    },
    {
      name: "malformed subnet",
      set: { "spec.tcp[0].match[0].destinationSubnets[0]": "10.0.0.0/40" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.tcp[0].match[0].destinationSubnets[0]",
    },
    {
      name: "TLS match without sniHosts",
      set: { "spec.tls[0].match[0].sniHosts": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.tls[0].match[0].sniHosts",
    },
    {
      name: "SNI host outside the hosts",
      set: { "spec.tls[0].match[0].sniHosts[0]": "other.example.com" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.tls[0].match[0].sniHosts[0]",
    },
    {
      name: "uri match on a TCP route",
      set: { "spec.tcp[0].match[0].uri": { prefix: "/" } },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.tcp[0].match[0].uri",
    },
  ];
  for (const m of l4Mistakes)
    test(`mistake: ${m.name}`, () => checkMistake(mongo, "VirtualService default/bookinfo-mongo", m));

  test("a root route may not carry its own route", () => {
    const text = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root}
spec:
  hosts: [bookinfo.example.com]
  http:
  - delegate: {name: d}
    route: [{destination: {host: productpage}}]
`;
    assertProblems(load(text), [
      {
        code: "AMBIT_E_INVALID_VALUE",
        path: "spec.http[0].route",
        resource: "VirtualService default/root",
        index: 0,
      },
    ]);
  });

  test("a manifest with three different mistakes reports all three", () => {
    const text = withChanges(base, {
      [`${M}.uri`]: { regex: "(?=x)" },
      "spec.http[1].route[0].weight": "a lot",
      "spec.http[0].retries.tries": 3,
    });
    assertProblems(load(text), [
      { code: "AMBIT_E_INVALID_VALUE", path: `${M}.uri.regex`, resource: R, index: 0 },
      { code: "AMBIT_E_INVALID_TYPE", path: "spec.http[1].route[0].weight", resource: R, index: 0 },
      { code: "AMBIT_E_UNKNOWN_FIELD", path: "spec.http[0].retries.tries", resource: R, index: 0 },
    ]);
  });
});
