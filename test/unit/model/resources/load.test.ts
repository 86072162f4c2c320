// The loader: YAML streams, JSON objects and arrays, Kubernetes Lists, served API versions,
// namespace defaulting, duplicates across files, syntax errors with lines, and problem positions.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadTexts, parseDocuments } from "../../../../src/model/resources/load.js";
import { assertProblems, load, loadValid } from "./helpers.js";

const SVC = (name: string, ns?: string): string =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n${ns ? `  namespace: ${ns}\n` : ""}spec:\n  ports:\n  - port: 80\n`;

describe("documents", () => {
  test("a multi-document stream skips empty documents and numbers the rest in order", () => {
    const text = `---\n---\n${SVC("a")}---\n\n---\n# only a comment\n---\n${SVC("b")}---\n`;
    const r = loadValid(text);
    assert.deepEqual(
      r.map((x) => [x.metadata.name, x.origin?.index]),
      [
        ["a", 0],
        ["b", 1],
      ],
    );
  });

  test("problems carry the document index among non-empty documents", () => {
    const text = `${SVC("a")}---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec:\n  ports:\n  - port: 0\n`;
    assertProblems(load(text), [
      { code: "AMBIT_E_INVALID_VALUE", path: "spec.ports[0].port", resource: "Service default/b", index: 1 },
    ]);
  });

  test("a JSON object loads", () => {
    const r = loadValid(
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "j" },
        spec: { ports: [{ port: 80 }] },
      }),
    );
    assert.equal(r[0]?.metadata.name, "j");
  });

  test("a JSON array loads each element as a document", () => {
    const items = ["a", "b", "c"].map((name) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name },
      spec: { ports: [{ port: name === "c" ? "x" : 80 }] },
    }));
    const r = load(JSON.stringify(items, null, 2));
    assert.deepEqual(
      r.resources.map((x) => x.metadata.name),
      ["a", "b"],
    );
    assertProblems(r, [
      { code: "AMBIT_E_INVALID_TYPE", path: "spec.ports[0].port", resource: "Service default/c", index: 2 },
    ]);
  });

  test("a kind: List expands to its items, and item problems keep their lines", () => {
    const text = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
  spec:
    ports: [{port: 80}]
- apiVersion: v1
  kind: Service
  metadata: {name: b}
  spec:
    ports:
    - port: 99999
`;
    const r = load(text);
    assert.deepEqual(
      r.resources.map((x) => x.metadata.name),
      ["a"],
    );
    assertProblems(r, [
      { code: "AMBIT_E_INVALID_VALUE", path: "spec.ports[0].port", resource: "Service default/b", index: 1 },
    ]);
    assert.equal(r.problems[0]?.line, 14);
  });

  test("a typed list (ServiceList) and a JSON List expand too", () => {
    assert.equal(
      loadValid(
        `apiVersion: v1\nkind: ServiceList\nitems:\n- ${SVC("a").trimEnd().split("\n").join("\n  ")}\n`,
      ).length,
      1,
    );
    const json = JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "n1" } }],
    });
    assert.equal(loadValid(json)[0]?.kind, "Namespace");
  });

  test("YAML flow style starting with '{' is YAML, not broken JSON", () => {
    assert.equal(loadValid("{apiVersion: v1, kind: Namespace, metadata: {name: flow}}").length, 1);
  });

  test("a document that is not an object, or lacks apiVersion/kind, is reported", () => {
    assertProblems(load("just a string\n---\nkind: Service\nmetadata: {name: x}\n"), [
      { code: "AMBIT_E_NOT_OBJECT", path: "", index: 0 },
      { code: "AMBIT_E_MISSING_TYPE", path: "apiVersion", index: 1 },
    ]);
  });

  test("origin records file and index", () => {
    const r = loadTexts([{ file: "a.yaml", text: `${SVC("x")}---\n${SVC("y")}` }]);
    assert.deepEqual(r.resources[1]?.origin, { file: "a.yaml", index: 1 });
  });
});

describe("YAML errors", () => {
  test("a syntax error is reported with its line; other documents still load with their numbers", () => {
    const text = `${SVC("a")}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [b\n---\n${SVC("c")}`;
    const r = load(text);
    assert.deepEqual(
      r.resources.map((x) => [x.metadata.name, x.origin?.index]),
      [
        ["a", 0],
        ["c", 2],
      ],
    );
    assert.ok(r.problems.length >= 1);
    for (const p of r.problems) {
      assert.equal(p.code, "AMBIT_E_PARSE");
      assert.equal(p.index, 1);
      assert.equal(p.file, "test.yaml");
      assert.ok(p.line !== undefined && p.line >= 12 && p.line <= 14, `line ${p.line}`);
    }
  });

  test("a duplicate key is a parse error at its line", () => {
    const text =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\nspec: {ports: [{port: 80}]}\n";
    const r = load(text);
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.index, p.line]),
      [["AMBIT_E_PARSE", 0, 5]],
    );
    assert.equal(r.resources.length, 0);
  });

  test("bad indentation is a parse error", () => {
    const r = load("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n   labels: {}\n");
    assert.equal(r.problems[0]?.code, "AMBIT_E_PARSE");
    const line = r.problems[0]?.line ?? 0;
    assert.ok(line >= 4 && line <= 5, `line ${line}`);
  });

  test("parseDocuments alone returns raw documents and parse problems", () => {
    const { docs, problems } = parseDocuments("a: 1\n---\nb: [\n", "f.yaml");
    assert.equal(docs.length, 1);
    assert.equal(problems[0]?.index, 1);
  });
});

describe("kinds and API versions", () => {
  const doc = (apiVersion: string, kind: string, spec: string): string =>
    `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: x}\nspec: ${spec}\n`;
  const AP = "{action: ALLOW}";
  const DR = "{host: reviews}";
  const GW = "{gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}";
  const accepted: [string, string, string][] = [
    ["security.istio.io/v1", "AuthorizationPolicy", AP],
    ["security.istio.io/v1beta1", "AuthorizationPolicy", AP],
    ["security.istio.io/v1beta1", "PeerAuthentication", "{mtls: {mode: STRICT}}"],
    ["security.istio.io/v1", "RequestAuthentication", "{}"],
    ["networking.istio.io/v1", "DestinationRule", DR],
    ["networking.istio.io/v1beta1", "DestinationRule", DR],
    ["networking.istio.io/v1alpha3", "DestinationRule", DR],
    ["gateway.networking.k8s.io/v1", "Gateway", GW],
    ["gateway.networking.k8s.io/v1beta1", "Gateway", GW],
    ["gateway.networking.k8s.io/v1beta1", "HTTPRoute", "{}"],
    ["gateway.networking.k8s.io/v1", "GRPCRoute", "{}"],
    ["v1", "Service", "{ports: [{port: 80}]}"],
  ];
  for (const [apiVersion, kind, spec] of accepted) {
    test(`accepts ${apiVersion} ${kind}`, () => {
      const [r] = loadValid(doc(apiVersion, kind, spec));
      assert.equal(r?.apiVersion, apiVersion);
      assert.equal(r?.kind, kind);
    });
  }

  const rejected: [string, string][] = [
    ["security.istio.io/v1alpha1", "AuthorizationPolicy"],
    ["networking.istio.io/v2", "DestinationRule"],
    ["networking.istio.io/v1", "AuthorizationPolicy"],
    ["gateway.networking.k8s.io/v1alpha2", "HTTPRoute"],
    ["networking.istio.io/v1", "Gateway"],
    ["apps/v1", "Pod"],
    ["core/v1", "Service"],
  ];
  for (const [apiVersion, kind] of rejected) {
    test(`rejects ${apiVersion} ${kind}`, () => {
      assertProblems(load(doc(apiVersion, kind, "{}")), [
        { code: "AMBIT_E_UNKNOWN_KIND", path: "apiVersion", index: 0 },
      ]);
    });
  }

  test("an unknown kind is reported at kind", () => {
    assertProblems(load(doc("apps/v1", "Deployment", "{}")), [
      { code: "AMBIT_E_UNKNOWN_KIND", path: "kind", resource: "Deployment default/x", index: 0 },
    ]);
  });

  test("unknown top-level fields and missing metadata are reported", () => {
    assertProblems(load("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nspecs: {}\n"), [
      { code: "AMBIT_E_UNKNOWN_FIELD", path: "specs", index: 0 },
    ]);
    assertProblems(load("apiVersion: v1\nkind: Namespace\n"), [
      { code: "AMBIT_E_MISSING_FIELD", path: "metadata", index: 0 },
    ]);
    assertProblems(load("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labelz: {}}\n"), [
      { code: "AMBIT_E_UNKNOWN_FIELD", path: "metadata.labelz", index: 0 },
    ]);
  });

  test("status (as found in exported YAML) is accepted", () => {
    assert.equal(loadValid(`${SVC("s")}status:\n  loadBalancer: {}\n`).length, 1);
  });
});

describe("namespaces and duplicates", () => {
  test("namespaced kinds default to namespace 'default'; cluster-scoped kinds have none", () => {
    const r = loadValid(
      `${SVC("a")}---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns1, namespace: ignored}\n`,
    );
    assert.equal(r[0]?.metadata.namespace, "default");
    assert.equal(r[1]?.metadata.namespace, undefined);
  });

  test("the same kind/namespace/name twice across files is a duplicate, reported on the second", () => {
    const r = loadTexts([
      { file: "one.yaml", text: SVC("reviews", "bookinfo") },
      { file: "two.yaml", text: `${SVC("other", "bookinfo")}---\n${SVC("reviews", "bookinfo")}` },
    ]);
    assert.equal(r.resources.length, 2);
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.file, p.index, p.resource, p.path, p.line]),
      [["AMBIT_E_DUPLICATE", "two.yaml", 1, "Service bookinfo/reviews", "metadata.name", 13]],
    );
  });

  test("an implicit and an explicit 'default' namespace collide", () => {
    assertProblems(loadTexts([{ file: "a.yaml", text: `${SVC("x")}---\n${SVC("x", "default")}` }]), [
      { code: "AMBIT_E_DUPLICATE", path: "metadata.name", resource: "Service default/x", index: 1 },
    ]);
  });

  test("the same name in another namespace or of another kind is not a duplicate", () => {
    const text = `${SVC("x", "a")}---\n${SVC("x", "b")}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x, namespace: a}\nspec: {host: x}\n`;
    assert.equal(loadValid(text).length, 3);
  });
});

describe("positions", () => {
  test("field problems point at the line of the field", () => {
    const text =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - name: http\n    port: 0\n";
    const r = load(text);
    assert.deepEqual(
      r.problems.map((p) => [p.path, p.line]),
      [["spec.ports[0].port", 8]],
    );
  });

  test("a file with three different mistakes in three documents reports all three", () => {
    const text = `apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  portz: []
  ports: [{port: 80}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: FASTEST}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: c}
spec:
  rules:
  - backendRefs:
    - name: reviews
`;
    const r = load(text, "bookinfo.yaml");
    assertProblems(r, [
      { code: "AMBIT_E_UNKNOWN_FIELD", path: "spec.portz", resource: "Service default/a", index: 0 },
      {
        code: "AMBIT_E_INVALID_VALUE",
        path: "spec.trafficPolicy.loadBalancer.simple",
        resource: "DestinationRule bookinfo/b",
        index: 1,
      },
      {
        code: "AMBIT_E_MISSING_FIELD",
        path: "spec.rules[0].backendRefs[0].port",
        resource: "HTTPRoute default/c",
        index: 2,
      },
    ]);
    assert.deepEqual(
      r.problems.map((p) => [p.file, p.line]),
      [
        ["bookinfo.yaml", 5],
        ["bookinfo.yaml", 14],
        ["bookinfo.yaml", 22],
      ],
    );
  });

  test("a value of the wrong type in a union (int or string) is a type error", () => {
    const text =
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n  - port: 80\n    targetPort: [8080]\n";
    assertProblems(load(text), [{ code: "AMBIT_E_INVALID_TYPE", path: "spec.ports[0].targetPort" }]);
  });

  test("a missing enum field is reported as missing", () => {
    const text =
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n  - filters:\n    - requestHeaderModifier: {remove: [x]}\n";
    assertProblems(load(text), [{ code: "AMBIT_E_MISSING_FIELD", path: "spec.rules[0].filters[0].type" }]);
  });
});
