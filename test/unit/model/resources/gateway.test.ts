// Gateway (gateway.networking.k8s.io): waypoint and ingress Gateways load with the CRD defaults;
// listener, TLS, address and allowedRoutes rules are enforced with exact field paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { GatewaySpec } from "../../../../src/model/resources/gateway.js";
import {
  checkMistake,
  DELETE,
  loadValid,
  specOf,
  withChanges,
  type Manifest,
  type Mistake,
} from "./helpers.js";

const WAYPOINT = `
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
`;

const INGRESS = `
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata:
  name: bookinfo-gateway
  namespace: istio-ingress
spec:
  gatewayClassName: istio
  addresses:
  - value: 10.0.0.10
  - type: Hostname
    value: ingress.example.com
  infrastructure:
    labels:
      team: web
    annotations:
      example.com/owner: web-team
    parametersRef:
      group: ""
      kind: ConfigMap
      name: gw-options
  listeners:
  - name: http
    hostname: "*.example.com"
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchLabels:
            shared-gateway-access: "true"
          matchExpressions:
          - key: env
            operator: In
            values: [prod, staging]
  - name: https
    hostname: bookinfo.example.com
    port: 443
    protocol: HTTPS
    tls:
      certificateRefs:
      - name: bookinfo-cert
    allowedRoutes:
      kinds:
      - kind: HTTPRoute
  - name: passthrough
    port: 8443
    protocol: TLS
    tls:
      mode: Passthrough
  - name: tcp
    port: 9000
    protocol: TCP
  - name: custom
    port: 9100
    protocol: example.com/custom
`;

describe("Gateway", () => {
  test("a waypoint Gateway loads; allowedRoutes defaults to the same namespace", () => {
    const spec = specOf<GatewaySpec>(WAYPOINT);
    assert.equal(spec.gatewayClassName, "istio-waypoint");
    assert.deepEqual(spec.listeners[0], {
      name: "mesh",
      port: 15008,
      protocol: "HBONE",
      allowedRoutes: { namespaces: { from: "Same" } },
    });
  });

  test("an ingress Gateway loads with the CRD defaults (TLS mode, certificate ref kind, route kind group, address type)", () => {
    const spec = specOf<GatewaySpec>(INGRESS);
    const https = spec.listeners[1];
    assert.equal(https?.tls?.mode, "Terminate");
    assert.deepEqual(https?.tls?.certificateRefs?.[0], { group: "", kind: "Secret", name: "bookinfo-cert" });
    assert.deepEqual(https?.allowedRoutes.kinds, [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute" }]);
    assert.equal(https?.allowedRoutes.namespaces.from, "Same");
    assert.equal(spec.addresses?.[0]?.type, "IPAddress");
    assert.equal(spec.listeners[0]?.allowedRoutes.namespaces.from, "Selector");
  });

  test("both served versions load", () => {
    assert.equal(loadValid(WAYPOINT.replace("/v1\n", "/v1beta1\n")).length, 1);
  });

  const base = parse(INGRESS) as Manifest;
  const R = "Gateway istio-ingress/bookinfo-gateway";
  const L = "spec.listeners";
  const mistakes: Mistake[] = [
    {
      name: "unknown field",
      set: { "spec.gatewayClass": "istio" },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.gatewayClass",
    },
    {
      name: "unknown listener field",
      set: { [`${L}[0].tlsConfig`]: {} },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: `${L}[0].tlsConfig`,
    },
    {
      name: "class missing",
      set: { "spec.gatewayClassName": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.gatewayClassName",
    },
    {
      name: "no listeners",
      set: { "spec.listeners": [] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.listeners",
    },
    {
      name: "listeners missing",
      set: { "spec.listeners": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.listeners",
    },
    {
      name: "duplicate listener names",
      set: { [`${L}[1].name`]: "http" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[1].name`,
    },
    {
      name: "listener name upper case",
      set: { [`${L}[0].name`]: "HTTP" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[0].name`,
    },
    { name: "port 0", set: { [`${L}[0].port`]: 0 }, code: "AMBIT_E_INVALID_VALUE", path: `${L}[0].port` },
    {
      name: "port as string",
      set: { [`${L}[0].port`]: "80" },
      code: "AMBIT_E_INVALID_TYPE",
      path: `${L}[0].port`,
    },
    {
      name: "unknown protocol",
      set: { [`${L}[0].protocol`]: "HTTP3" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[0].protocol`,
    },
    {
      name: "protocol missing",
      set: { [`${L}[0].protocol`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${L}[0].protocol`,
    },
    {
      name: "hostname upper case",
      set: { [`${L}[1].hostname`]: "Bookinfo.example.com" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[1].hostname`,
    },
    {
      name: "hostname with a port",
      set: { [`${L}[1].hostname`]: "bookinfo.example.com:443" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[1].hostname`,
    },
    {
      name: "tls on HTTP",
      set: { [`${L}[0].tls`]: { mode: "Terminate", certificateRefs: [{ name: "c" }] } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[0].tls`,
    },
    {
      name: "Passthrough on HTTPS",
      set: { [`${L}[1].tls.mode`]: "Passthrough" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[1].tls.mode`,
    },
    {
      name: "bad TLS mode",
      set: { [`${L}[1].tls.mode`]: "Reencrypt" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[1].tls.mode`,
    },
    {
      name: "Terminate without certificates",
      set: { [`${L}[1].tls.certificateRefs`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${L}[1].tls.certificateRefs`,
    },
    {
      name: "TLS listener without tls",
      set: { [`${L}[2].tls`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${L}[2].tls`,
    },
    {
      name: "hostname on TCP",
      set: { [`${L}[3].hostname`]: "db.example.com" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[3].hostname`,
    },
    {
      name: "same port, protocol and hostname",
      set: { [`${L}[4]`]: { name: "tcp2", port: 9000, protocol: "TCP" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[4]`,
    },
    {
      name: "bad namespaces.from",
      set: { [`${L}[0].allowedRoutes.namespaces.from`]: "Everywhere" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[0].allowedRoutes.namespaces.from`,
    },
    {
      name: "Selector without selector",
      set: { [`${L}[0].allowedRoutes.namespaces.selector`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${L}[0].allowedRoutes.namespaces.selector`,
    },
    {
      name: "label selector operator",
      set: { [`${L}[0].allowedRoutes.namespaces.selector.matchExpressions[0].operator`]: "Equals" },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[0].allowedRoutes.namespaces.selector.matchExpressions[0].operator`,
    },
    {
      name: "label selector In without values",
      set: { [`${L}[0].allowedRoutes.namespaces.selector.matchExpressions[0].values`]: [] },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[0].allowedRoutes.namespaces.selector.matchExpressions[0].values`,
    },
    {
      name: "label selector key",
      set: { [`${L}[0].allowedRoutes.namespaces.selector.matchLabels`]: { "shared gateway": "true" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: `${L}[0].allowedRoutes.namespaces.selector.matchLabels["shared gateway"]`,
    },
    {
      name: "route kind without kind",
      set: { [`${L}[1].allowedRoutes.kinds[0].kind`]: DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: `${L}[1].allowedRoutes.kinds[0].kind`,
    },
    {
      name: "address not an IP",
      set: { "spec.addresses[0].value": "10.0.0.256" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.addresses[0].value",
    },
    {
      name: "address type unknown",
      set: { "spec.addresses[0].type": "MAC" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.addresses[0].type",
    },
    {
      name: "duplicate address",
      set: { "spec.addresses[1]": { value: "10.0.0.10" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.addresses[1].value",
    },
    {
      name: "infrastructure label key",
      set: { "spec.infrastructure.labels": { "web team": "x" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: 'spec.infrastructure.labels["web team"]',
    },
    {
      name: "parametersRef without name",
      set: { "spec.infrastructure.parametersRef.name": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.infrastructure.parametersRef.name",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(base, R, m));

  test("a waypoint listener on another protocol loads as written", () => {
    const spec = specOf<GatewaySpec>(
      withChanges(parse(WAYPOINT) as Manifest, {
        "spec.listeners[1]": { name: "http", port: 80, protocol: "HTTP" },
      }),
    );
    assert.equal(spec.listeners.length, 2);
  });
});
