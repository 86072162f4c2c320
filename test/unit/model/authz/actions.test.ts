// Which policies apply (namespace, root namespace, selector, targetRefs) and how actions combine:
// CUSTOM reported, DENY before ALLOW, AUDIT and dry-run recorded but never enforced.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { allowRule, ap, decide, denyRule, DRY_RUN, PLAINTEXT, req, to, verdict } from "./helpers.js";

const NOTHING = {};

void describe("scope", () => {
  void test("no policy: allowed by default, policy null", () => {
    const d = decide([], req(), "L7");
    assert.equal(d.decision, "ALLOW");
    assert.equal(d.policy, null);
    assert.match(d.reason, /no ALLOW policy applies to workload foo\/httpbin/);
  });

  void test("a policy applies only in its own namespace", () => {
    assert.equal(verdict([ap("allow-nothing", NOTHING, "baz")], req(), "L7"), "ALLOW");
    assert.equal(verdict([ap("allow-nothing", NOTHING, "foo")], req(), "L7"), "DENY");
  });

  void test("the root namespace applies mesh-wide, with or without a selector", () => {
    assert.equal(
      verdict([ap("deny-all", { action: "DENY", rules: [{}] }, "istio-system")], req(), "L4"),
      "DENY",
    );
    const sel = ap(
      "deny-httpbin",
      { action: "DENY", selector: { matchLabels: { app: "httpbin" } }, rules: [{}] },
      "istio-system",
    );
    assert.equal(verdict([sel], req(), "L7"), "DENY");
    assert.equal(verdict([sel], req({ destination: { workloadLabels: { app: "other" } } }), "L7"), "ALLOW");
  });

  void test("a custom root namespace replaces istio-system", () => {
    const docs = [ap("deny-all", { action: "DENY", rules: [{}] }, "mesh-root")];
    assert.equal(verdict(docs, req(), "L7"), "ALLOW");
    assert.equal(verdict(docs, req(), "L7", { rootNamespace: "mesh-root" }), "DENY");
    assert.equal(
      verdict([ap("deny-all", { action: "DENY", rules: [{}] }, "istio-system")], req(), "L7", {
        rootNamespace: "mesh-root",
      }),
      "ALLOW",
    );
  });

  void test("every matchLabels entry must match; an empty selector selects the whole namespace", () => {
    const two = ap("p", {
      action: "DENY",
      selector: { matchLabels: { app: "httpbin", version: "v2" } },
      rules: [{}],
    });
    assert.equal(verdict([two], req(), "L7"), "ALLOW");
    const empty = ap("p", { action: "DENY", selector: { matchLabels: {} }, rules: [{}] });
    assert.equal(verdict([empty], req(), "L7"), "DENY");
    assert.equal(verdict([ap("p", { action: "DENY", selector: {}, rules: [{}] })], req(), "L4"), "DENY");
  });
});

void describe("targetRefs", () => {
  const waypoint = { name: "waypoint", namespace: "foo" };
  const gatewayRef = { group: "gateway.networking.k8s.io", kind: "Gateway", name: "waypoint" };
  const denyAtWaypoint = ap("deny-wp", {
    targetRefs: [gatewayRef],
    action: "DENY",
    rules: [to({ methods: ["DELETE"] })],
  });
  const del = req({ http: { method: "DELETE" }, waypoint });

  void test("a Gateway ref applies when that waypoint enforces", () => {
    const d = decide([denyAtWaypoint], del, "L7");
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, "foo/deny-wp");
  });

  void test("another waypoint, another namespace or a wrong group does not match", () => {
    assert.equal(
      verdict(
        [denyAtWaypoint],
        req({ http: { method: "DELETE" }, waypoint: { name: "other", namespace: "foo" } }),
        "L7",
      ),
      "ALLOW",
    );
    assert.equal(
      verdict(
        [denyAtWaypoint],
        req({ http: { method: "DELETE" }, waypoint: { name: "waypoint", namespace: "bar" } }),
        "L7",
      ),
      "ALLOW",
    );
    const noGroup = ap("deny-wp", {
      targetRefs: [{ kind: "Gateway", name: "waypoint" }],
      action: "DENY",
      rules: [{}],
    });
    assert.equal(verdict([noGroup], del, "L7"), "ALLOW");
    const crossNs = ap("deny-wp", {
      targetRefs: [{ ...gatewayRef, namespace: "bar" }],
      action: "DENY",
      rules: [{}],
    });
    assert.equal(verdict([crossNs], del, "L7"), "ALLOW");
  });

  void test("the legacy singular targetRef works too", () => {
    const single = ap("deny-wp", { targetRef: gatewayRef, action: "DENY", rules: [{}] });
    assert.equal(verdict([single], del, "L7"), "DENY");
  });

  void test("without a waypoint (sidecar-style L7) and at L4, targetRef policies are ignored", () => {
    assert.equal(verdict([denyAtWaypoint], req({ http: { method: "DELETE" } }), "L7"), "ALLOW");
    assert.equal(
      verdict(
        [ap("deny-wp", { targetRefs: [gatewayRef], action: "DENY", rules: [{}] })],
        req({ http: null, waypoint }),
        "L4",
      ),
      "ALLOW",
    );
  });

  void test("with a waypoint, selector and namespace-wide policies are ignored", () => {
    assert.equal(verdict([denyRule({}), ap("allow-nothing", NOTHING)], del, "L7"), "ALLOW");
  });

  void test("a Service ref applies when the request is addressed to that Service through a waypoint", () => {
    const svcRef = ap("svc-deny", {
      targetRefs: [{ kind: "Service", group: "", name: "httpbin" }],
      action: "DENY",
      rules: [{}],
    });
    const viaService = req({ waypoint, destination: { service: { name: "httpbin", namespace: "foo" } } });
    assert.equal(decide([svcRef], viaService, "L7").policy, "foo/svc-deny");
    assert.equal(
      verdict(
        [svcRef],
        req({ waypoint, destination: { service: { name: "other", namespace: "foo" } } }),
        "L7",
      ),
      "ALLOW",
    );
    assert.equal(verdict([svcRef], req({ waypoint }), "L7"), "ALLOW", "no Service known");
    const core = ap("svc-deny", {
      targetRefs: [{ kind: "Service", group: "core", name: "httpbin" }],
      action: "DENY",
      rules: [{}],
    });
    assert.equal(verdict([core], viaService, "L7"), "DENY");
  });

  void test("a root-namespace GatewayClass istio-waypoint ref applies at every waypoint", () => {
    const cls = ap(
      "all-waypoints",
      {
        targetRefs: [{ group: "gateway.networking.k8s.io", kind: "GatewayClass", name: "istio-waypoint" }],
        action: "DENY",
        rules: [{}],
      },
      "istio-system",
    );
    assert.equal(verdict([cls], req({ waypoint: { name: "any", namespace: "zzz" } }), "L7"), "DENY");
    const notRoot = ap(
      "all-waypoints",
      {
        targetRefs: [{ group: "gateway.networking.k8s.io", kind: "GatewayClass", name: "istio-waypoint" }],
        action: "DENY",
        rules: [{}],
      },
      "foo",
    );
    assert.equal(verdict([notRoot], req({ waypoint }), "L7"), "ALLOW");
  });

  void test("ALLOW targetRef policies make the waypoint default-deny", () => {
    const allowGet = ap("allow-get", { targetRefs: [gatewayRef], rules: [to({ methods: ["GET"] })] });
    assert.equal(verdict([allowGet], req({ waypoint }), "L7"), "ALLOW");
    const d = decide([allowGet], del, "L7");
    assert.equal(d.decision, "DENY");
    assert.match(d.reason, /foo\/allow-get/);
  });
});

void describe("actions", () => {
  void test("spec {} and rules [] allow nothing but only while no other ALLOW matches", () => {
    for (const spec of [{}, { rules: [] }]) {
      assert.equal(verdict([ap("a", spec)], req(), "L7"), "DENY");
      assert.equal(verdict([ap("a", spec)], req(), "L4"), "DENY");
      assert.equal(verdict([ap("a", spec), allowRule({})], req(), "L7"), "ALLOW");
    }
  });

  void test("a DENY with no rules does nothing; a DENY with {} denies everything", () => {
    assert.equal(verdict([ap("d", { action: "DENY" })], req(), "L7"), "ALLOW");
    assert.equal(verdict([ap("d", { action: "DENY", rules: [] })], req(), "L4"), "ALLOW");
    assert.equal(verdict([ap("d", { action: "DENY", rules: [{}] })], req(), "L4"), "DENY");
  });

  void test("DENY wins over a matching ALLOW and is named in the decision", () => {
    const d = decide([allowRule({}), denyRule(to({ methods: ["GET"] }), "deny-get")], req(), "L7");
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, "foo/deny-get");
    assert.match(d.reason, /DENY policy foo\/deny-get: rule 0 matched \(methods GET\)/);
  });

  void test("root-namespace DENY policies are checked first", () => {
    const d = decide(
      [
        ap("a-deny", { action: "DENY", rules: [{}] }),
        ap("z-deny", { action: "DENY", rules: [{}] }, "istio-system"),
      ],
      req(),
      "L7",
    );
    assert.equal(d.policy, "istio-system/z-deny");
  });

  void test("ALLOW policies are OR'ed; the matching one decides", () => {
    const d = decide(
      [allowRule(to({ paths: ["/a"] }), "a"), allowRule(to({ paths: ["/"] }), "b")],
      req(),
      "L7",
    );
    assert.equal(d.decision, "ALLOW");
    assert.equal(d.policy, "foo/b");
  });

  void test("no ALLOW matched: the reason lists the ALLOW policies that apply", () => {
    const d = decide(
      [allowRule(to({ paths: ["/a"] }), "a"), allowRule(to({ paths: ["/b"] }), "b")],
      req(),
      "L7",
    );
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, null);
    assert.match(d.reason, /2 ALLOW policies apply: foo\/a, foo\/b/);
  });

  void test("AUDIT never changes the decision; matches are listed at L7", () => {
    const audit = ap("audit-admin", { action: "AUDIT", rules: [to({ paths: ["/admin/*"] })] });
    const d = decide([audit], req({ http: { path: "/admin/x" } }), "L7");
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.audit, ["foo/audit-admin"]);
    assert.deepEqual(decide([audit], req({ http: { path: "/public" } }), "L7").audit, []);
    const denied = decide(
      [audit, ap("deny", { action: "DENY", rules: [{}] })],
      req({ http: { path: "/admin/x" } }),
      "L7",
    );
    assert.equal(denied.decision, "DENY");
    assert.deepEqual(denied.audit, ["foo/audit-admin"], "audit is recorded even when the request is denied");
  });

  void test("AUDIT and CUSTOM are not sent to the node proxy", () => {
    const docs = [
      ap("audit", { action: "AUDIT", rules: [{}] }),
      ap("ext", { action: "CUSTOM", provider: { name: "opa" }, rules: [{}] }),
    ];
    const d = decide(docs, req({ http: null }), "L4");
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.audit, []);
    assert.deepEqual(d.custom, []);
  });

  void test("CUSTOM policies that match are reported for the external authorizer, without changing the local decision", () => {
    const ext = ap("ext-authz", {
      action: "CUSTOM",
      provider: { name: "opa" },
      rules: [to({ paths: ["/secure/*"] })],
    });
    const d = decide([ext], req({ http: { path: "/secure/x" } }), "L7");
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.custom, ["foo/ext-authz"]);
    assert.deepEqual(decide([ext], req({ http: { path: "/open" } }), "L7").custom, []);
    const withDeny = decide([ext, denyRule({})], req({ http: { path: "/secure/x" } }), "L7");
    assert.equal(withDeny.decision, "DENY");
    assert.deepEqual(withDeny.custom, ["foo/ext-authz"]);
  });

  void test("dry-run policies are evaluated and reported, never enforced", () => {
    const dryDeny = ap("dry-deny", { action: "DENY", rules: [to({ paths: ["/headers"] })] }, "foo", DRY_RUN);
    const d = decide([dryDeny], req({ http: { path: "/headers" } }), "L7");
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.dryRun, [{ policy: "foo/dry-deny", action: "DENY", matched: true, dryRun: true }]);
    assert.deepEqual(decide([dryDeny], req({ http: { path: "/x" } }), "L7").dryRun, [
      { policy: "foo/dry-deny", action: "DENY", matched: false, dryRun: true },
    ]);
  });

  void test("a dry-run ALLOW does not make the workload default-deny", () => {
    const dryAllow = ap("dry-allow", { rules: [to({ paths: ["/only"] })] }, "foo", DRY_RUN);
    const d = decide([dryAllow], req(), "L7");
    assert.equal(d.decision, "ALLOW");
    assert.equal(d.policy, null);
    assert.deepEqual(d.dryRun, [{ policy: "foo/dry-allow", action: "ALLOW", matched: false, dryRun: true }]);
  });

  void test("dry-run at L4 uses the L4 conversion and is never enforced", () => {
    const dry = ap("dry", { action: "DENY", rules: [{}] }, "foo", DRY_RUN);
    const d = decide([dry], req({ http: null }), "L4");
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.dryRun, [{ policy: "foo/dry", action: "DENY", matched: true, dryRun: true }]);
  });

  void test("dry-run annotation values other than true leave the policy enforced", () => {
    assert.equal(
      verdict(
        [ap("d", { action: "DENY", rules: [{}] }, "foo", { "istio.io/dry-run": "false" })],
        req(),
        "L7",
      ),
      "DENY",
    );
  });

  void test("every decision carries a reason", () => {
    for (const docs of [[], [denyRule({})], [allowRule({})], [allowRule(to({ paths: ["/x"] }))]]) {
      for (const layer of ["L4", "L7"] as const) {
        const d = decide(docs, req({ source: PLAINTEXT }), layer);
        assert.ok(d.reason.length > 10, d.reason);
      }
    }
  });
});
