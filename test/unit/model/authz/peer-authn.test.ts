// PeerAuthentication: mesh / namespace / workload / port precedence, UNSET inheritance, the
// oldest-wins rule, and what STRICT does to plaintext peers at both layers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compilePeerAuthentications, effectiveMtls } from "../../../../src/model/authz/peer-authn.js";
import { ap, decide, load, pa, PLAINTEXT, req, type Doc } from "./helpers.js";

const HTTPBIN = { app: "httpbin", version: "v1" };
const plaintext = req({ source: PLAINTEXT });

function mtls(
  docs: Doc[],
  port = 8080,
  ns = "foo",
  labels: Record<string, string> = HTTPBIN,
): ReturnType<typeof effectiveMtls> {
  return effectiveMtls(compilePeerAuthentications(load(docs).pas, "istio-system"), ns, labels, port);
}

const meshStrict = pa("default", { mtls: { mode: "STRICT" } }, "istio-system");

void describe("effective mTLS mode", () => {
  void test("no PeerAuthentication: PERMISSIVE by default, decided by nobody", () => {
    assert.deepEqual(mtls([]), { mode: "PERMISSIVE", policy: null, level: "default" });
  });

  void test("a mesh-wide policy in the root namespace applies everywhere", () => {
    assert.deepEqual(mtls([meshStrict]), { mode: "STRICT", policy: "istio-system/default", level: "mesh" });
    assert.equal(mtls([meshStrict], 80, "other", {}).mode, "STRICT");
  });

  void test("a namespace policy overrides the mesh; UNSET inherits", () => {
    assert.equal(mtls([meshStrict, pa("ns", { mtls: { mode: "PERMISSIVE" } })]).mode, "PERMISSIVE");
    assert.deepEqual(mtls([meshStrict, pa("ns", { mtls: { mode: "UNSET" } })]), {
      mode: "STRICT",
      policy: "istio-system/default",
      level: "mesh",
    });
    assert.deepEqual(mtls([meshStrict, pa("ns", {})]), {
      mode: "STRICT",
      policy: "istio-system/default",
      level: "mesh",
    });
    assert.equal(
      mtls([meshStrict, pa("ns", { mtls: { mode: "PERMISSIVE" } }, "other")]).mode,
      "STRICT",
      "another namespace's policy does not apply",
    );
  });

  void test("a workload policy overrides the namespace, only for workloads its selector matches", () => {
    const docs = [
      pa("ns", { mtls: { mode: "PERMISSIVE" } }),
      pa("wl", { selector: { matchLabels: { app: "httpbin" } }, mtls: { mode: "STRICT" } }),
    ];
    assert.deepEqual(mtls(docs), { mode: "STRICT", policy: "foo/wl", level: "workload" });
    assert.deepEqual(mtls(docs, 8080, "foo", { app: "other" }), {
      mode: "PERMISSIVE",
      policy: "foo/ns",
      level: "namespace",
    });
  });

  void test("port-level modes override the workload mode; a port-level UNSET inherits it", () => {
    const wl = pa("wl", {
      selector: { matchLabels: { app: "httpbin" } },
      mtls: { mode: "STRICT" },
      portLevelMtls: {
        "8080": { mode: "PERMISSIVE" },
        "9090": { mode: "UNSET" },
        "7070": { mode: "DISABLE" },
      },
    });
    assert.deepEqual(mtls([wl], 8080), { mode: "PERMISSIVE", policy: "foo/wl", level: "port" });
    assert.deepEqual(mtls([wl], 9090), { mode: "STRICT", policy: "foo/wl", level: "workload" });
    assert.equal(mtls([wl], 7070).mode, "DISABLE");
    assert.equal(mtls([wl], 1234).mode, "STRICT");
  });

  void test("a port-level STRICT under an inherited PERMISSIVE applies to that port only", () => {
    const wl = pa("wl", {
      selector: { matchLabels: { app: "httpbin" } },
      portLevelMtls: { "9000": { mode: "STRICT" } },
    });
    assert.equal(mtls([wl], 9000).mode, "STRICT");
    assert.equal(mtls([wl], 8080).mode, "PERMISSIVE");
    assert.equal(mtls([meshStrict, wl], 8080).mode, "STRICT", "the workload's UNSET mode inherits the mesh");
  });

  void test("several matching workload policies: the oldest wins, then namespace/name order", () => {
    const older = pa(
      "zz-old",
      { selector: { matchLabels: { app: "httpbin" } }, mtls: { mode: "STRICT" } },
      "foo",
      "2024-01-01T00:00:00Z",
    );
    const newer = pa(
      "aa-new",
      { selector: { matchLabels: { version: "v1" } }, mtls: { mode: "PERMISSIVE" } },
      "foo",
      "2025-01-01T00:00:00Z",
    );
    assert.equal(mtls([newer, older]).policy, "foo/zz-old");
    const a = pa("a", { selector: { matchLabels: { app: "httpbin" } }, mtls: { mode: "PERMISSIVE" } });
    const b = pa("b", { selector: { matchLabels: { version: "v1" } }, mtls: { mode: "STRICT" } });
    assert.equal(mtls([b, a]).policy, "foo/a", "without timestamps, name order decides");
    assert.equal(
      mtls([a, older]).policy,
      "foo/zz-old",
      "a timestamped policy is older than one loaded from a file",
    );
  });

  void test("several namespace-wide policies: the oldest wins", () => {
    const docs = [
      pa("b", { mtls: { mode: "STRICT" } }, "foo", "2024-06-01T00:00:00Z"),
      pa("a", { mtls: { mode: "PERMISSIVE" } }, "foo", "2024-07-01T00:00:00Z"),
    ];
    assert.deepEqual(mtls(docs), { mode: "STRICT", policy: "foo/b", level: "namespace" });
  });

  void test("selector policies in the root namespace are ignored, as Istio does", () => {
    const rootSelector = pa(
      "root-wl",
      { selector: { matchLabels: { app: "httpbin" } }, mtls: { mode: "STRICT" } },
      "istio-system",
    );
    assert.equal(mtls([rootSelector]).mode, "PERMISSIVE");
  });
});

void describe("PeerAuthentication in decisions", () => {
  for (const layer of ["L4", "L7"] as const) {
    void test(`${layer}: STRICT denies a plaintext peer, naming the PeerAuthentication`, () => {
      const d = decide([meshStrict], plaintext, layer);
      assert.equal(d.decision, "DENY");
      assert.equal(d.policy, "istio-system/default");
      assert.match(d.reason, /PeerAuthentication istio-system\/default/);
      assert.match(d.reason, /STRICT/);
    });

    void test(`${layer}: STRICT lets an mTLS peer through to the policies`, () => {
      assert.equal(decide([meshStrict], req(), layer).decision, "ALLOW");
      assert.equal(
        decide([meshStrict, ap("deny", { action: "DENY", rules: [{}] })], req(), layer).policy,
        "foo/deny",
      );
    });

    void test(`${layer}: PERMISSIVE and DISABLE accept plaintext`, () => {
      assert.equal(decide([pa("p", { mtls: { mode: "PERMISSIVE" } })], plaintext, layer).decision, "ALLOW");
      assert.equal(decide([pa("d", { mtls: { mode: "DISABLE" } })], plaintext, layer).decision, "ALLOW");
    });
  }

  void test("peer authentication is checked before any AuthorizationPolicy", () => {
    const d = decide([meshStrict, ap("allow-all", { rules: [{}] })], plaintext, "L4");
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, "istio-system/default");
  });

  void test("a port-level exception lets plaintext reach that port only", () => {
    const wl = pa("wl", {
      selector: { matchLabels: { app: "httpbin" } },
      mtls: { mode: "STRICT" },
      portLevelMtls: { "8080": { mode: "PERMISSIVE" } },
    });
    assert.equal(decide([wl], plaintext, "L4").decision, "ALLOW");
    const d = decide([wl], req({ source: PLAINTEXT, destination: { port: 9090 } }), "L4");
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, "foo/wl");
    assert.match(d.reason, /port 9090/);
  });
});
