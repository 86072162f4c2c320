// The istio ConfigMap (MeshConfig in data.mesh): accepted only as istio-system/istio, its ext_authz
// providers validated at load time with field paths into data.mesh, other ConfigMaps rejected; and
// it survives the control plane → waypoint round trip (JSON re-validated by the waypoint).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { waypointResources } from "../../../../src/controlplane/xds/view.js";
import { validateDocument } from "../../../../src/model/resources/load.js";
import { parseMeshConfig } from "../../../../src/model/resources/mesh-config.js";
import type { ConfigMap } from "../../../../src/model/resources/registry.js";
import { assertProblems, load, loadValid } from "./helpers.js";

const GOOD = `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    accessLogFile: /dev/stdout
    extensionProviders:
      - name: authz-http
        envoyExtAuthzHttp:
          service: authz.shop.svc.cluster.local
          port: 8000
          headersToUpstreamOnAllow: [x-authz-*]
      - name: authz-grpc
        envoyExtAuthzGrpc: { service: 127.0.0.1, port: 9000, failOpen: true, timeout: 2s }
      - name: zipkin
        zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 }
  meshNetworks: "networks: {}"
`;

describe("ConfigMap istio-system/istio (MeshConfig)", () => {
  test("a valid mesh config loads; its providers parse from the stored resource", () => {
    const [r] = loadValid(GOOD);
    assert.ok(r);
    assert.equal(r.kind, "ConfigMap");
    const cm = r;
    assert.equal(cm.metadata.namespace, "istio-system");
    assert.equal("spec" in cm && cm.spec !== undefined, false);
    const { providers, problems } = parseMeshConfig(cm.data.mesh ?? "", "cm");
    assert.deepEqual(problems, []);
    assert.deepEqual([...providers.keys()], ["authz-http", "authz-grpc"]);
    assert.equal(providers.get("authz-grpc")?.failOpen, true);
    assert.equal(providers.get("authz-grpc")?.timeoutMs, 2000);
  });

  test("a bad provider is reported with its field path inside data.mesh", () => {
    const r = load(`
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    extensionProviders:
      - name: a
        envoyExtAuthzHttp: { service: "bad host!", port: 99999, failopen: true }
      - name: b
        envoyExtAuthzGrpc: { service: authz.example.com, port: 9000, statusOnError: 42 }
      - name: b
        envoyExtAuthzGrpc: { service: authz.example.com, port: 9001 }
`);
    assertProblems(r, [
      { code: "AMBIT_E_INVALID_VALUE", path: "data.mesh.extensionProviders[0].envoyExtAuthzHttp.service" },
      { code: "AMBIT_E_INVALID_VALUE", path: "data.mesh.extensionProviders[0].envoyExtAuthzHttp.port" },
      { code: "AMBIT_E_UNKNOWN_FIELD", path: "data.mesh.extensionProviders[0].envoyExtAuthzHttp.failopen" },
      {
        code: "AMBIT_E_INVALID_VALUE",
        path: "data.mesh.extensionProviders[1].envoyExtAuthzGrpc.statusOnError",
      },
      { code: "AMBIT_E_INVALID_VALUE", path: "data.mesh.extensionProviders[2].name" },
    ]);
    assert.equal(r.resources.length, 0, "the ConfigMap is rejected as a whole");
    assert.ok(r.problems.every((p) => p.resource === "ConfigMap istio-system/istio" && p.line === 6));
  });

  test("data.mesh that is not YAML, or not a mapping, is reported at data.mesh", () => {
    const bad = (mesh: string): string => `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data: { mesh: ${JSON.stringify(mesh)} }
`;
    assertProblems(load(bad("extensionProviders: [")), [
      { code: "AMBIT_E_INVALID_VALUE", path: "data.mesh" },
    ]);
    assertProblems(load(bad("- 1")), [{ code: "AMBIT_E_INVALID_VALUE", path: "data.mesh" }]);
    assertProblems(load(bad("extensionProviders: {}")), [
      { code: "AMBIT_E_INVALID_VALUE", path: "data.mesh.extensionProviders" },
    ]);
  });

  test("other ConfigMaps, other namespaces, unknown keys, spec and non-string data are rejected", () => {
    assertProblems(
      load(`
apiVersion: v1
kind: ConfigMap
metadata: { name: app-config, namespace: shop }
data: { a: b }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: shop }
data: { mesh: "{}" }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data: { mesh: "{}", values: "x" }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
spec: {}
data: { mesh: { extensionProviders: [] } }
`),
      [
        { code: "AMBIT_E_INVALID_VALUE", path: "metadata.name", index: 0 },
        { code: "AMBIT_E_INVALID_VALUE", path: "metadata.namespace", index: 1 },
        { code: "AMBIT_E_UNKNOWN_FIELD", path: "data.values", index: 2 },
        { code: "AMBIT_E_UNKNOWN_FIELD", path: "spec", index: 3 },
        { code: "AMBIT_E_INVALID_TYPE", path: "data.mesh", index: 3 },
      ],
    );
  });

  test("an istio ConfigMap without data, or with an empty mesh, is valid (no providers)", () => {
    loadValid(`
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
`);
    loadValid(`
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data: { mesh: "" }
`);
  });

  test("pushed to waypoints as JSON, it validates again there unchanged", () => {
    const resources = loadValid(GOOD);
    const pushed = waypointResources(resources);
    const m = pushed.get("ConfigMap/istio-system/istio");
    assert.ok(m, "the ConfigMap is among the waypoint resources");
    const again = validateDocument({ file: "xds:cm", index: 0, value: JSON.parse(m.json ?? "") });
    assert.deepEqual(again.problems, []);
    assert.deepEqual((again.resource as ConfigMap).data, (resources[0] as ConfigMap).data);
  });
});
