// What each layer can see: the node proxy (istiod's ambient conversion: ALLOW rules with L7
// attributes dropped, DENY rules stripped, emptied matches never match) and an L7 proxy handling a
// non-HTTP connection (Envoy RBAC "for TCP": HTTP-only fields left out, emptied matches match all).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { convertRules } from "../../../../src/model/authz/l4.js";
import type { Rule } from "../../../../src/model/resources/security.js";
import { allowRule, ap, decide, denyRule, from, PLAINTEXT, req, to, verdict, when } from "./helpers.js";

const tcp = req({ http: null });
const get = req();

void describe("node proxy (L4)", () => {
  void test("the HTTP part of a request is ignored", () => {
    assert.equal(verdict([denyRule(to({ methods: ["GET"] }))], get, "L4"), "ALLOW");
    assert.equal(verdict([allowRule(to({ ports: ["8080"] }))], get, "L4"), "ALLOW");
  });

  void test("L4 attributes are enforced: identity, namespaces, service accounts, IPs, ports", () => {
    assert.equal(
      verdict([allowRule(from({ principals: ["cluster.local/ns/bar/sa/sleep"] }))], tcp, "L4"),
      "ALLOW",
    );
    assert.equal(
      verdict([allowRule(from({ namespaces: ["bar"], ipBlocks: ["10.10.2.0/24"] }))], tcp, "L4"),
      "ALLOW",
    );
    assert.equal(verdict([allowRule(from({ serviceAccounts: ["bar/sleep"] }))], tcp, "L4"), "ALLOW");
    assert.equal(verdict([allowRule(from({ notServiceAccounts: ["bar/sleep"] }))], tcp, "L4"), "DENY");
    assert.equal(verdict([allowRule(to({ notPorts: ["8080"] }))], tcp, "L4"), "DENY");
    assert.equal(
      verdict([allowRule(when({ key: "destination.ip", values: ["10.10.1.5"] }))], tcp, "L4"),
      "ALLOW",
    );
    assert.equal(
      verdict(
        [allowRule(when({ key: "source.principal", notValues: ["cluster.local/ns/bar/*"] }))],
        tcp,
        "L4",
      ),
      "DENY",
    );
  });

  void test("plaintext: principals fail, notNamespaces matches", () => {
    const plain = req({ http: null, source: PLAINTEXT });
    assert.equal(verdict([allowRule(from({ principals: ["*"] }))], plain, "L4"), "DENY");
    assert.equal(verdict([denyRule(from({ notNamespaces: ["bar"] }))], plain, "L4"), "DENY");
    assert.equal(verdict([denyRule(from({ notPrincipals: ["*"] }))], plain, "L4"), "DENY");
    assert.equal(verdict([denyRule(from({ notPrincipals: ["*"] }))], tcp, "L4"), "ALLOW");
  });

  void test("an ALLOW rule with any L7 attribute is dropped, positive or negative", () => {
    for (const rule of [
      to({ methods: ["GET"] }),
      to({ notPaths: ["/x"] }),
      to({ hosts: ["a"], ports: ["8080"] }),
      from({ namespaces: ["bar"], notRequestPrincipals: ["*"] }),
      from({ remoteIpBlocks: ["10.0.0.0/8"] }),
      when({ key: "remote.ip", values: ["10.0.0.0/8"] }),
      when({ key: "connection.sni", values: ["x"] }),
      when({ key: "request.headers[x]", notValues: ["y"] }),
      when({ key: "source.serviceAccount", values: ["bar/sleep"] }),
    ]) {
      const d = decide([allowRule(rule)], tcp, "L4");
      assert.equal(d.decision, "DENY", JSON.stringify(rule));
      assert.match(d.reason, /drops ALLOW rules/);
    }
  });

  void test("the policy stays after its rules are dropped, so it still makes the workload default-deny", () => {
    const d = decide([allowRule(to({ methods: ["GET"] }))], tcp, "L4");
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, null);
    assert.match(d.reason, /foo\/allow/);
    assert.equal(
      verdict([ap("mixed", { rules: [to({ methods: ["GET"] }), from({ namespaces: ["bar"] })] })], tcp, "L4"),
      "ALLOW",
    );
  });

  void test("DENY: L7 attributes are stripped and the rest is enforced (broader than written)", () => {
    const d = decide([denyRule(to({ methods: ["POST"], ports: ["8080"] }), "deny-post")], tcp, "L4");
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, "foo/deny-post");
    assert.match(d.reason, /ports 8080/);
    assert.match(d.reason, /methods/);
    assert.equal(verdict([denyRule(to({ methods: ["POST"], ports: ["9090"] }))], tcp, "L4"), "ALLOW");
  });

  void test("DENY: a source, operation or condition made only of L7 fields never matches", () => {
    assert.equal(verdict([denyRule(from({ notRequestPrincipals: ["*"] }))], tcp, "L4"), "ALLOW");
    assert.equal(
      verdict([denyRule({ ...from({ requestPrincipals: ["*"] }), ...to({ ports: ["8080"] }) })], tcp, "L4"),
      "ALLOW",
    );
    assert.equal(verdict([denyRule(to({ paths: ["/admin"] }))], tcp, "L4"), "ALLOW");
    assert.equal(
      verdict(
        [
          denyRule(
            when({ key: "source.namespace", values: ["bar"] }, { key: "connection.sni", values: ["x"] }),
          ),
        ],
        tcp,
        "L4",
      ),
      "ALLOW",
    );
    assert.equal(verdict([denyRule(from({ remoteIpBlocks: ["0.0.0.0/0"] }))], tcp, "L4"), "ALLOW");
  });

  void test("DENY: an L7-only alternative does not block a sibling with L4 fields", () => {
    const rule = { to: [{ operation: { paths: ["/x"] } }, { operation: { ports: ["8080"] } }] };
    assert.equal(verdict([denyRule(rule)], tcp, "L4"), "DENY");
  });

  void test("DENY: rules are independent; an L4-only rule still applies", () => {
    const docs = [
      ap("deny-two", {
        action: "DENY",
        rules: [
          from({ notRequestPrincipals: ["x/y"] }),
          from({ principals: ["cluster.local/ns/bar/sa/sleep"] }),
        ],
      }),
    ];
    const d = decide(docs, tcp, "L4");
    assert.equal(d.decision, "DENY");
    assert.match(d.reason, /rule 1 matched/);
  });

  void test("an empty rule still matches everything", () => {
    assert.equal(
      verdict(
        [ap("mixed", { rules: [{}, to({ paths: ["/x"] })] })],
        req({ http: null, source: PLAINTEXT }),
        "L4",
      ),
      "ALLOW",
    );
  });
});

void describe("L7 proxy, non-HTTP connection", () => {
  void test("an ALLOW rule needing HTTP is dropped; the policy still default-denies", () => {
    assert.equal(verdict([allowRule(to({ methods: ["GET"] }))], tcp, "L7"), "DENY");
    assert.equal(verdict([allowRule(from({ requestPrincipals: ["*"] }))], tcp, "L7"), "DENY");
    assert.equal(
      verdict([allowRule(from({ remoteIpBlocks: ["10.10.0.0/16"] }))], tcp, "L7"),
      "ALLOW",
      "remote IP exists without HTTP",
    );
  });

  void test("a DENY loses its HTTP-only fields and matches more (Envoy's TCP RBAC)", () => {
    assert.equal(verdict([denyRule(to({ methods: ["POST"] }))], tcp, "L7"), "DENY");
    assert.equal(verdict([denyRule(from({ notRequestPrincipals: ["*"] }))], tcp, "L7"), "DENY");
    assert.equal(verdict([denyRule(when({ key: "request.headers[x]", values: ["1"] }))], tcp, "L7"), "DENY");
    assert.equal(
      verdict([denyRule({ ...to({ methods: ["POST"] }), ...from({ namespaces: ["other"] }) })], tcp, "L7"),
      "ALLOW",
    );
  });

  void test("connection-level conditions are still evaluated", () => {
    assert.equal(
      verdict([allowRule(when({ key: "destination.port", values: ["8080"] }))], tcp, "L7"),
      "ALLOW",
    );
    assert.equal(verdict([denyRule(when({ key: "connection.sni", values: ["x"] }))], tcp, "L7"), "ALLOW");
  });
});

void describe("convertRules", () => {
  const rules: Rule[] = [
    { to: [{ operation: { methods: ["GET"], ports: ["80"] } }] },
    { from: [{ source: { principals: ["a/ns/b/sa/c"] } }] },
    { when: [{ key: "request.headers[x]", values: ["1"] }] },
  ];

  void test("http keeps everything", () => {
    const s = convertRules(rules, "ALLOW", "http");
    assert.equal(s.rules.length, 3);
    assert.deepEqual(s.removed, []);
  });

  void test("l4 ALLOW drops rules 0 and 2 and reports what it removed", () => {
    const s = convertRules(rules, "ALLOW", "l4");
    assert.deepEqual(
      s.rules.map((r) => r.index),
      [1],
    );
    assert.deepEqual(s.dropped, [0, 2]);
    assert.deepEqual(s.removed, ["methods", "request.headers[x]"]);
  });

  void test("l4 DENY strips fields and marks emptied matches", () => {
    const s = convertRules(rules, "DENY", "l4");
    assert.deepEqual(s.rules[0]?.to, [{ ports: ["80"] }]);
    assert.deepEqual(s.rules[2]?.when, [null]);
  });

  void test("tcp DENY drops HTTP-only conditions instead of blocking the rule", () => {
    const s = convertRules(rules, "DENY", "tcp");
    assert.deepEqual(s.rules[2]?.when, []);
  });
});
