// GRPCRoute: a service/method route loads with the CRD defaults; method, header, filter and
// backend rules are enforced with exact field paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { GRPCRouteSpec } from "../../../../src/model/resources/gateway.js";
import { checkMistake, DELETE, specOf, type Manifest, type Mistake } from "./helpers.js";

const GREETER = `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: greeter
  namespace: grpc
spec:
  parentRefs:
  - name: waypoint
  hostnames:
  - greeter.grpc.svc.cluster.local
  rules:
  - matches:
    - method:
        service: helloworld.Greeter
        method: SayHello
      headers:
      - name: env
        value: canary
    backendRefs:
    - name: greeter-v2
      port: 50051
  - matches:
    - method:
        type: RegularExpression
        service: "helloworld\\\\..*"
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef:
          name: greeter-shadow
          port: 50051
        percent: 10
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add:
        - name: x-route
          value: regex
    backendRefs:
    - name: greeter-v1
      port: 50051
      weight: 3
`;

describe("GRPCRoute", () => {
  test("a greeter route loads with the CRD defaults", () => {
    const spec = specOf<GRPCRouteSpec>(GREETER);
    assert.deepEqual(spec.rules?.[0]?.matches?.[0]?.method, {
      type: "Exact",
      service: "helloworld.Greeter",
      method: "SayHello",
    });
    assert.equal(spec.rules?.[0]?.matches?.[0]?.headers?.[0]?.type, "Exact");
    assert.equal(spec.rules?.[0]?.backendRefs?.[0]?.weight, 1);
    assert.equal(spec.parentRefs?.[0]?.kind, "Gateway");
  });

  const base = parse(GREETER) as Manifest;
  const R = "GRPCRoute grpc/greeter";
  const M = "spec.rules[0].matches[0]";
  const mistakes: Mistake[] = [
    {
      name: "unknown field",
      set: { "spec.rules[0].timeouts": {} },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.rules[0].timeouts",
    },
    {
      name: "method match empty",
      set: { [`${M}.method`]: {} },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.method`,
    },
    {
      name: "service with a space",
      set: { [`${M}.method.service`]: "hello world.Greeter" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.method.service`,
    },
    {
      name: "method with a '/'",
      set: { [`${M}.method.method`]: "Say/Hello" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.method.method`,
    },
    {
      name: "bad method match type",
      set: { [`${M}.method.type`]: "Prefix" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.method.type`,
    },
    {
      name: "regex does not compile",
      set: { "spec.rules[1].matches[0].method.service": "hello(" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].matches[0].method.service",
    },
    {
      name: "header without value",
      set: { [`${M}.headers[0].value`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${M}.headers[0].value`,
    },
    {
      name: "duplicate header match",
      set: { [`${M}.headers[1]`]: { name: "env", value: "prod" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${M}.headers[1].name`,
    },
    {
      name: "HTTP-only filter type",
      set: { "spec.rules[1].filters[0].type": "URLRewrite" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].filters[0].type",
    },
    {
      name: "mirror filter without config",
      set: { "spec.rules[1].filters[0].requestMirror": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.rules[1].filters[0].requestMirror",
    },
    {
      name: "mirror percent over 100",
      set: { "spec.rules[1].filters[0].requestMirror.percent": 101 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].filters[0].requestMirror.percent",
    },
    {
      name: "mirror to a Service without port",
      set: { "spec.rules[1].filters[0].requestMirror.backendRef.port": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.rules[1].filters[0].requestMirror.backendRef.port",
    },
    {
      name: "repeated header modifier",
      set: {
        "spec.rules[1].filters[2]": {
          type: "RequestHeaderModifier",
          requestHeaderModifier: { remove: ["x"] },
        },
      },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].filters[2].type",
    },
    {
      name: "backend without port",
      set: { "spec.rules[0].backendRefs[0].port": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.rules[0].backendRefs[0].port",
    },
    {
      name: "backend weight negative",
      set: { "spec.rules[1].backendRefs[0].weight": -1 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.rules[1].backendRefs[0].weight",
    },
    {
      name: "hostname wildcard in the middle",
      set: { "spec.hostnames[0]": "greeter.*.svc" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hostnames[0]",
    },
    {
      name: "parentRefs as an object",
      set: { "spec.parentRefs": { name: "waypoint" } },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.parentRefs",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(base, R, m));
});
