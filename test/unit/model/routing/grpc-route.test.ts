// GRPCRoute at the waypoint: service/method matches as Istio turns them into paths
// (/package.Service/Method), header matches, precedence and catch-all rules.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { selectRoute } from "../../../../src/model/routing/index.js";
import { compileYaml, req } from "./helpers.js";

const GRPC = `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 7070}]
  rules:
  - matches: [{method: {service: echo.Echo, method: Hello}}]
    backendRefs: [{name: echo, port: 7070}]
  - matches: [{method: {service: echo.Echo}}]
    backendRefs: [{name: echo, port: 7070}]
  - matches: [{method: {method: Stream}}]
    backendRefs: [{name: echo, port: 7070}]
  - matches: [{method: {type: RegularExpression, service: "echo\\\\.E.*", method: "Get.*"}}]
    backendRefs: [{name: echo, port: 7070}]
  - matches: [{headers: [{name: x-tenant, value: blue}]}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-blue, value: "1"}]}}]
    backendRefs: [{name: echo, port: 7070}]
  - backendRefs: [{name: echo, port: 7070}]
`;

describe("GRPCRoute", () => {
  const idx = compileYaml(GRPC);
  const cases: [string, string, Record<string, string>, string][] = [
    ["service and method: exact path", "/echo.Echo/Hello", {}, "#0"],
    ["service only: any method of it", "/echo.Echo/Bye", {}, "#1"],
    ["method only: any service", "/other.Svc/Stream", {}, "#2"],
    ["regex service and method", "/echo.Extra/GetAll", {}, "#3"],
    ["header match", "/other.Svc/Unary", { "x-tenant": "blue" }, "#4"],
    ["a rule without matches catches the rest", "/other.Svc/Unary", {}, "#5"],
  ];
  for (const [name, path, headers, want] of cases) {
    test(name, () => {
      const d = selectRoute(idx, req(path, { service: "default/echo", port: 7070, method: "POST", headers }));
      assert.equal(d?.route, `GRPCRoute/default/echo${want}`);
      assert.equal(d?.kind, "GRPCRoute");
    });
  }

  test("decisions carry backends, header modifiers and Istio's default retries", () => {
    const d = selectRoute(
      idx,
      req("/x.Y/Z", { service: "default/echo", port: 7070, headers: { "x-tenant": "blue" } }),
    );
    assert.deepEqual(d?.requestHeaders, { set: [], add: [{ name: "x-blue", value: "1" }], remove: [] });
    assert.equal(d?.backends[0]?.host, "echo.default.svc.cluster.local");
    assert.equal(d?.retries?.attempts, 2);
  });
});
