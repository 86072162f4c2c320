// The wire-form L4 evaluator's edges: scope and listing, empty rules and clauses, negative fields,
// IPv6 prefixes, presence matches, plaintext peers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  authorizeWire,
  compileWirePolicies,
  type WireAuthorization,
  type WireConnection,
} from "../../../../src/model/authz/index.js";

const conn = (
  over: Partial<WireConnection["source"]> = {},
  dst: Partial<WireConnection["destination"]> = {},
): WireConnection => ({
  source: { identity: "spiffe://cluster.local/ns/shop/sa/client", ip: "10.244.1.5", ...over },
  destination: {
    ip: "10.244.2.9",
    port: 8080,
    namespace: "shop",
    name: "api",
    authorizationPolicies: [],
    ...dst,
  },
});

const policy = (p: Partial<WireAuthorization>): WireAuthorization => ({
  name: "p",
  namespace: "shop",
  scope: "NAMESPACE",
  action: "ALLOW",
  rules: [],
  ...p,
});

const decide = (policies: WireAuthorization[], c: WireConnection): string =>
  authorizeWire(compileWirePolicies(policies, { rootNamespace: "istio-system" }), c).decision;

describe("wire-form L4 evaluator", () => {
  test("no policy allows; an ALLOW policy with no rules denies; an empty rule allows", () => {
    assert.equal(decide([], conn()), "ALLOW");
    assert.equal(decide([policy({ rules: [] })], conn()), "DENY");
    assert.equal(decide([policy({ rules: [{ clauses: [] }] })], conn()), "ALLOW");
  });

  test("a clause with no matches matches (ztunnel); one holding only an empty match never does", () => {
    assert.equal(
      decide([policy({ action: "DENY", rules: [{ clauses: [{ matches: [] }] }] })], conn()),
      "DENY",
    );
    assert.equal(
      decide([policy({ action: "DENY", rules: [{ clauses: [{ matches: [{}] }] }] })], conn()),
      "ALLOW",
    );
  });

  test("WORKLOAD_SELECTOR policies apply only when the workload lists them; other namespaces' do not apply", () => {
    const p = policy({ scope: "WORKLOAD_SELECTOR", action: "DENY", rules: [{ clauses: [] }] });
    assert.equal(decide([p], conn()), "ALLOW");
    assert.equal(decide([p], conn({}, { authorizationPolicies: ["shop/p"] })), "DENY");
    assert.equal(
      decide([policy({ namespace: "other", action: "DENY", rules: [{ clauses: [] }] })], conn()),
      "ALLOW",
    );
    assert.equal(
      decide(
        [policy({ namespace: "istio-system", scope: "GLOBAL", action: "DENY", rules: [{ clauses: [] }] })],
        conn(),
      ),
      "DENY",
    );
  });

  test("negative fields, presence and plaintext peers (the static STRICT policy)", () => {
    const strict = policy({
      action: "DENY",
      rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
    });
    assert.equal(decide([strict], conn()), "ALLOW");
    assert.equal(decide([strict], conn({ identity: null })), "DENY");
    const notNs = policy({
      rules: [{ clauses: [{ matches: [{ notNamespaces: [{ prefix: "sh" }] }] }] }],
    });
    assert.equal(decide([notNs], conn()), "DENY");
    assert.equal(decide([notNs], conn({ identity: "spiffe://cluster.local/ns/web/sa/x" })), "ALLOW");
  });

  test("principals, service accounts, ports and IPv4/IPv6 prefixes", () => {
    const p = policy({
      rules: [
        {
          clauses: [
            {
              matches: [
                { principals: [{ suffix: "/sa/client" }] },
                { serviceAccounts: [{ namespace: "web", serviceAccount: "fe" }] },
              ],
            },
            {
              matches: [
                {
                  destinationPorts: [8080],
                  notSourceIps: [{ address: Uint8Array.from([10, 9, 0, 0]), length: 16 }],
                },
              ],
            },
          ],
        },
      ],
    });
    assert.equal(decide([p], conn()), "ALLOW");
    assert.equal(decide([p], conn({ identity: "spiffe://cluster.local/ns/web/sa/fe" })), "ALLOW");
    assert.equal(decide([p], conn({ identity: "spiffe://cluster.local/ns/web/sa/other" })), "DENY");
    assert.equal(decide([p], conn({ ip: "10.9.3.3" })), "DENY");
    assert.equal(decide([p], conn({}, { port: 9090 })), "DENY");
    const v6 = new Uint8Array(16);
    v6[0] = 0xfd;
    const six = policy({
      rules: [{ clauses: [{ matches: [{ sourceIps: [{ address: v6, length: 8 }] }] }] }],
    });
    assert.equal(decide([six], conn({ ip: "fd00::5" })), "ALLOW");
    assert.equal(decide([six], conn({ ip: "10.0.0.1" })), "DENY");
  });

  test("dry-run policies are reported, not enforced; the decision names the deciding policy", () => {
    const dry = policy({ name: "dry", action: "DENY", dryRun: true, rules: [{ clauses: [] }] });
    const d = authorizeWire(compileWirePolicies([dry]), conn());
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.dryRun, [{ policy: "shop/dry", action: "DENY", matched: true, dryRun: true }]);
    const deny = authorizeWire(
      compileWirePolicies([policy({ name: "no", action: "DENY", rules: [{ clauses: [] }] })]),
      conn(),
    );
    assert.equal(deny.policy, "shop/no");
    assert.match(deny.reason, /DENY policy shop\/no/);
  });
});
