// The wire-form L4 evaluator against ztunnel's rules (src/rbac.rs, src/state.rs assert_rbac,
// src/state/policy.rs): emptiness at each level, negative fields, dropped entries, IPv4/IPv6
// prefixes as integer ranges, presence, principal/namespace/service-account comparison, scopes
// and listing, enums as decoded, order of DENY/ALLOW, reasons, and robustness.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AUTHORIZATION_TYPE_URL, decodeAny, encodeAny } from "../../../../src/api/xds-types.js";
import {
  authorizeWire,
  compileWirePolicies,
  type WireAuthorization,
  type WireConnection,
  type WireMatch,
} from "../../../../src/model/authz/index.js";

type Src = Partial<WireConnection["source"]>;
type Dst = Partial<WireConnection["destination"]>;

const conn = (src: Src = {}, dst: Dst = {}): WireConnection => ({
  source: { identity: "spiffe://cluster.local/ns/shop/sa/client", ip: "10.244.1.5", ...src },
  destination: {
    ip: "10.244.2.9",
    port: 8080,
    namespace: "shop",
    name: "api",
    authorizationPolicies: [],
    ...dst,
  },
});

const pol = (p: Partial<WireAuthorization> = {}): WireAuthorization => ({
  name: "p",
  namespace: "shop",
  scope: "NAMESPACE",
  action: "ALLOW",
  rules: [],
  ...p,
});

/** An ALLOW policy with one rule, one clause, one match. */
const allowIf = (m: WireMatch, p: Partial<WireAuthorization> = {}): WireAuthorization =>
  pol({ rules: [{ clauses: [{ matches: [m] }] }], ...p });

const decide = (policies: WireAuthorization[], c: WireConnection = conn()): "ALLOW" | "DENY" =>
  authorizeWire(compileWirePolicies(policies), c).decision;

/** The same decision on the in-memory message and after a protobuf round trip. */
const decideBoth = (policies: WireAuthorization[], c: WireConnection = conn()): "ALLOW" | "DENY" => {
  const decoded = policies.map((p) => decodeAny<WireAuthorization>(encodeAny(AUTHORIZATION_TYPE_URL, p)));
  const a = decide(policies, c);
  assert.equal(decide(decoded, c), a, "decoded and in-memory messages decide alike");
  return a;
};

const v4 = (...b: number[]): Uint8Array => Uint8Array.from(b);
const v6 = (text: string): Uint8Array => {
  // Only what these tests need: "fd00:1::" style with trailing "::".
  const words = text.replace(/::$/, "").split(":");
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    const n = parseInt(w || "0", 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  });
  return out;
};

describe("wire evaluator: emptiness, as ztunnel", () => {
  test("a policy with no rules matches nothing (ALLOW: denies all; DENY: denies nothing)", () => {
    assert.equal(decideBoth([pol({ rules: [] })]), "DENY");
    assert.equal(decideBoth([pol({ action: "DENY", rules: [] })]), "ALLOW");
  });

  test("a rule with no clauses matches", () => {
    assert.equal(decideBoth([pol({ action: "DENY", rules: [{ clauses: [] }] })]), "DENY");
  });

  test("a clause with no matches matches; a clause holding only empty matches never does", () => {
    assert.equal(decideBoth([pol({ action: "DENY", rules: [{ clauses: [{ matches: [] }] }] })]), "DENY");
    assert.equal(
      decideBoth([pol({ action: "DENY", rules: [{ clauses: [{ matches: [{}, {}] }] }] })]),
      "ALLOW",
    );
    // An empty match beside a real one: the real one decides.
    const mixed = pol({
      action: "DENY",
      rules: [{ clauses: [{ matches: [{}, { destinationPorts: [8080] }] }] }],
    });
    assert.equal(decideBoth([mixed]), "DENY");
    assert.equal(decideBoth([mixed], conn({}, { port: 9090 })), "ALLOW");
  });

  test("istiod's emptied L7-only DENY (an empty match per operation) has no effect at L4", () => {
    const deny = pol({
      action: "DENY",
      rules: [{ clauses: [{ matches: [{}] }, { matches: [{ principals: [{ presence: {} }] }] }] }],
    });
    assert.equal(decideBoth([deny]), "ALLOW");
  });

  test("entries ztunnel drops (no match type, bad address, prefix too long) leave a field unset", () => {
    // Every entry dropped → the match is empty → never matches.
    assert.equal(
      decide([pol({ action: "DENY", rules: [{ clauses: [{ matches: [{ principals: [{}] }] }] }] })]),
      "ALLOW",
    );
    assert.equal(
      decide([allowIf({ sourceIps: [{ address: v4(10, 0, 0), length: 8 }] })]),
      "DENY",
      "a 3-byte address is dropped, the match is empty, the only ALLOW never matches",
    );
    assert.equal(decide([allowIf({ sourceIps: [{ address: v4(10, 0, 0, 0), length: 33 }] })]), "DENY");
    // Some entries dropped → the rest still constrain; a dropped field alone does not.
    assert.equal(
      decide([allowIf({ sourceIps: [{ address: v4(1, 2, 3), length: 8 }], destinationPorts: [8080] })]),
      "ALLOW",
    );
    assert.equal(
      decide([allowIf({ principals: [{}, { exact: "cluster.local/ns/shop/sa/other" }] })]),
      "DENY",
    );
  });
});

describe("wire evaluator: fields", () => {
  test("principals compare the SPIFFE ID without spiffe:// and never match a plaintext peer", () => {
    const exact = allowIf({ principals: [{ exact: "cluster.local/ns/shop/sa/client" }] });
    assert.equal(decideBoth([exact]), "ALLOW");
    assert.equal(decideBoth([exact], conn({ identity: null })), "DENY");
    assert.equal(decideBoth([allowIf({ principals: [{ prefix: "spiffe://" }] })]), "DENY");
    assert.equal(decideBoth([allowIf({ principals: [{ prefix: "cluster.local/ns/shop/" }] })]), "ALLOW");
    assert.equal(decideBoth([allowIf({ principals: [{ suffix: "/sa/client" }] })]), "ALLOW");
    // A prefix "" matches every identity but still not a plaintext peer.
    const any = allowIf({ principals: [{ prefix: "" }] });
    assert.equal(decideBoth([any]), "ALLOW");
    assert.equal(decideBoth([any], conn({ identity: null })), "DENY");
  });

  test("presence: any identity or namespace; never a plaintext peer (the static STRICT policy)", () => {
    const strict = pol({
      name: "istio_converted_static_strict",
      namespace: "istio-system",
      scope: "WORKLOAD_SELECTOR",
      action: "DENY",
      rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
    });
    const listed: Dst = { authorizationPolicies: ["istio-system/istio_converted_static_strict"] };
    assert.equal(decideBoth([strict], conn({}, listed)), "ALLOW");
    assert.equal(decideBoth([strict], conn({ identity: null }, listed)), "DENY");
    const ns = allowIf({ namespaces: [{ presence: {} }] });
    assert.equal(decideBoth([ns]), "ALLOW");
    assert.equal(decideBoth([ns], conn({ identity: null })), "DENY");
  });

  test("namespaces compare the peer's namespace, which is empty for a plaintext peer", () => {
    assert.equal(decideBoth([allowIf({ namespaces: [{ exact: "shop" }] })]), "ALLOW");
    assert.equal(decideBoth([allowIf({ namespaces: [{ exact: "web" }] })]), "DENY");
    // ztunnel compares "" for a plaintext peer: an exact "" matches it, a negative presence too.
    assert.equal(decideBoth([allowIf({ namespaces: [{ exact: "" }] })], conn({ identity: null })), "ALLOW");
    assert.equal(
      decideBoth([allowIf({ notNamespaces: [{ presence: {} }] })], conn({ identity: null })),
      "ALLOW",
    );
    assert.equal(decideBoth([allowIf({ notNamespaces: [{ presence: {} }] })]), "DENY");
  });

  test("service accounts need an identity with that namespace and name", () => {
    const sa = allowIf({ serviceAccounts: [{ namespace: "shop", serviceAccount: "client" }] });
    assert.equal(decideBoth([sa]), "ALLOW");
    assert.equal(decideBoth([sa], conn({ identity: "spiffe://cluster.local/ns/web/sa/client" })), "DENY");
    assert.equal(decideBoth([sa], conn({ identity: null })), "DENY");
    const notSa = allowIf({ notServiceAccounts: [{ namespace: "shop", serviceAccount: "client" }] });
    assert.equal(decideBoth([notSa]), "DENY");
    assert.equal(decideBoth([notSa], conn({ identity: null })), "ALLOW");
  });

  test("every not_ field excludes; set fields are AND-ed within a match, entries OR-ed within a field", () => {
    const base: WireMatch = { destinationPorts: [8080, 8443] };
    const cases: [WireMatch, "ALLOW" | "DENY"][] = [
      [base, "ALLOW"],
      [{ ...base, notDestinationPorts: [8080] }, "DENY"],
      [{ ...base, notPrincipals: [{ exact: "cluster.local/ns/shop/sa/client" }] }, "DENY"],
      [{ ...base, notPrincipals: [{ exact: "cluster.local/ns/shop/sa/other" }] }, "ALLOW"],
      [{ ...base, notNamespaces: [{ prefix: "sh" }] }, "DENY"],
      [{ ...base, notSourceIps: [{ address: v4(10, 244, 0, 0), length: 16 }] }, "DENY"],
      [{ ...base, notSourceIps: [{ address: v4(10, 9, 0, 0), length: 16 }] }, "ALLOW"],
      [{ ...base, notDestinationIps: [{ address: v4(10, 244, 2, 9), length: 32 }] }, "DENY"],
      [{ ...base, destinationIps: [{ address: v4(10, 244, 2, 0), length: 24 }] }, "ALLOW"],
      [{ ...base, destinationIps: [{ address: v4(10, 244, 3, 0), length: 24 }] }, "DENY"],
      [{ destinationPorts: [9090], sourceIps: [{ address: v4(10, 244, 1, 5), length: 32 }] }, "DENY"],
    ];
    for (const [m, want] of cases) assert.equal(decideBoth([allowIf(m)]), want, JSON.stringify(m));
  });

  test("IPv4 prefixes: /0, /32, unaligned lengths, and bits beyond the length ignored", () => {
    const at = (address: Uint8Array, length: number, ip: string): "ALLOW" | "DENY" =>
      decideBoth([allowIf({ sourceIps: [{ address, length }] })], conn({ ip }));
    assert.equal(at(v4(0, 0, 0, 0), 0, "203.0.113.1"), "ALLOW");
    assert.equal(at(v4(10, 244, 1, 5), 32, "10.244.1.5"), "ALLOW");
    assert.equal(at(v4(10, 244, 1, 5), 32, "10.244.1.6"), "DENY");
    assert.equal(at(v4(10, 244, 1, 0), 25, "10.244.1.127"), "ALLOW");
    assert.equal(at(v4(10, 244, 1, 0), 25, "10.244.1.128"), "DENY");
    assert.equal(at(v4(10, 244, 1, 99), 24, "10.244.1.200"), "ALLOW", "host bits of the prefix are ignored");
    assert.equal(at(v4(255, 255, 255, 255), 1, "128.0.0.1"), "ALLOW");
    assert.equal(at(v4(255, 255, 255, 255), 1, "127.255.255.255"), "DENY");
    // An IPv4-mapped IPv6 peer address counts as IPv4.
    assert.equal(at(v4(10, 244, 1, 0), 24, "::ffff:10.244.1.9"), "ALLOW");
  });

  test("IPv6 prefixes: word boundaries, /0, /128, and no mixing with IPv4", () => {
    const at = (address: Uint8Array, length: number, ip: string): "ALLOW" | "DENY" =>
      decideBoth([allowIf({ sourceIps: [{ address, length }] })], conn({ ip }));
    assert.equal(at(v6("fd00:1::"), 32, "fd00:1:ffff::1"), "ALLOW");
    assert.equal(at(v6("fd00:1::"), 32, "fd00:2::1"), "DENY");
    assert.equal(at(v6("fd00:1:2:3::"), 64, "fd00:1:2:3:aaaa::1"), "ALLOW");
    assert.equal(at(v6("fd00:1:2:3::"), 64, "fd00:1:2:4::1"), "DENY");
    assert.equal(at(v6("fd00:1:2:3:8000::"), 65, "fd00:1:2:3:8000::1"), "ALLOW");
    assert.equal(at(v6("fd00:1:2:3:8000::"), 65, "fd00:1:2:3:7fff::1"), "DENY");
    assert.equal(at(v6("fd00::"), 8, "fdff::1"), "ALLOW");
    assert.equal(at(v6("fd00::"), 8, "fe00::1"), "DENY");
    const full = v6("fd00:0:0:0:0:0:0:1");
    assert.equal(at(full, 128, "fd00::1"), "ALLOW");
    assert.equal(at(full, 128, "fd00::2"), "DENY");
    assert.equal(at(full, 127, "fd00::0"), "ALLOW");
    assert.equal(at(v6("::"), 0, "2001:db8::1"), "ALLOW");
    assert.equal(at(v6("::"), 0, "10.0.0.1"), "DENY", "an IPv6 prefix never matches an IPv4 peer");
    assert.equal(at(v4(0, 0, 0, 0), 0, "2001:db8::1"), "DENY", "an IPv4 prefix never matches an IPv6 peer");
    assert.equal(at(v6("fd00::"), 129, "fd00::1"), "DENY", "a prefix longer than 128 is dropped");
    // Destination prefixes too.
    assert.equal(
      decideBoth(
        [allowIf({ destinationIps: [{ address: v6("fd00:2::"), length: 32 }] })],
        conn({ ip: "fd00:1::5" }, { ip: "fd00:2::9" }),
      ),
      "ALLOW",
    );
  });
});

describe("wire evaluator: which policies apply", () => {
  const denyAll = (p: Partial<WireAuthorization>): WireAuthorization =>
    pol({ action: "DENY", rules: [{ clauses: [] }], ...p });

  test("NAMESPACE scope: only the workload's namespace (the root namespace is no exception)", () => {
    assert.equal(decideBoth([denyAll({ namespace: "shop" })]), "DENY");
    assert.equal(decideBoth([denyAll({ namespace: "web" })]), "ALLOW");
    assert.equal(decideBoth([denyAll({ namespace: "istio-system" })]), "ALLOW");
    assert.equal(
      decideBoth([denyAll({ namespace: "istio-system" })], conn({}, { namespace: "istio-system" })),
      "DENY",
    );
  });

  test("GLOBAL scope: every workload, whatever namespace the policy names", () => {
    assert.equal(decideBoth([denyAll({ namespace: "istio-system", scope: "GLOBAL" })]), "DENY");
    assert.equal(
      decideBoth([denyAll({ namespace: "mesh-root", scope: "GLOBAL" })], conn({}, { namespace: "web" })),
      "DENY",
    );
  });

  test("WORKLOAD_SELECTOR: only when the workload lists it; a listed unknown name is skipped", () => {
    const sel = denyAll({ scope: "WORKLOAD_SELECTOR" });
    assert.equal(decideBoth([sel]), "ALLOW", "not listed: does not apply");
    assert.equal(decideBoth([sel], conn({}, { authorizationPolicies: ["shop/p"] })), "DENY");
    assert.equal(decideBoth([sel], conn({}, { authorizationPolicies: ["shop/q", "web/p"] })), "ALLOW");
    // A listed policy of another namespace applies (ztunnel looks the name up, nothing more).
    const other = denyAll({ namespace: "web", scope: "WORKLOAD_SELECTOR" });
    assert.equal(decideBoth([other], conn({}, { authorizationPolicies: ["web/p"] })), "DENY");
  });

  test("an ALLOW that does not apply leaves the default; one that applies must match", () => {
    const allowWeb = allowIf({ namespaces: [{ exact: "web" }] }, { scope: "WORKLOAD_SELECTOR" });
    assert.equal(decideBoth([allowWeb]), "ALLOW");
    assert.equal(decideBoth([allowWeb], conn({}, { authorizationPolicies: ["shop/p"] })), "DENY");
  });

  test("listing a GLOBAL or NAMESPACE policy again changes nothing", () => {
    const set = compileWirePolicies([denyAll({ scope: "NAMESPACE", dryRun: true })]);
    const d = authorizeWire(set, conn({}, { authorizationPolicies: ["shop/p", "shop/p"] }));
    assert.equal(d.decision, "ALLOW");
    assert.equal(d.dryRun.length, 1);
  });
});

describe("wire evaluator: decisions", () => {
  test("DENY beats ALLOW, the deciding policy and what matched are named", () => {
    const deny = pol({
      name: "no-legacy",
      action: "DENY",
      rules: [
        { clauses: [{ matches: [{ destinationPorts: [1] }] }] },
        {
          clauses: [
            { matches: [{ namespaces: [{ prefix: "sh" }] }] },
            { matches: [{ destinationPorts: [8080] }] },
          ],
        },
      ],
    });
    const allow = allowIf({ principals: [{ presence: {} }] }, { name: "any" });
    const d = authorizeWire(compileWirePolicies([allow, deny]), conn());
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, "shop/no-legacy");
    assert.match(d.reason, /DENY policy shop\/no-legacy/);
    assert.match(d.reason, /rule 1/);
    assert.match(d.reason, /namespaces=\[sh\*\]/);
    assert.match(d.reason, /destinationPorts=\[8080\]/);
    const a = authorizeWire(compileWirePolicies([allow]), conn());
    assert.deepEqual([a.decision, a.policy], ["ALLOW", "shop/any"]);
    assert.match(a.reason, /principals=\[\*\]/);
    assert.deepEqual([a.audit, a.dryRun, a.custom], [[], [], []]);
  });

  test("no ALLOW matched: the default denies and the reason lists the ALLOW policies that applied", () => {
    const d = authorizeWire(
      compileWirePolicies([
        allowIf({ destinationPorts: [1] }, { name: "a" }),
        allowIf({ destinationPorts: [2] }, { name: "b" }),
      ]),
      conn(),
    );
    assert.equal(d.decision, "DENY");
    assert.equal(d.policy, null);
    assert.match(d.reason, /2 ALLOW policies apply: shop\/a, shop\/b/);
  });

  test("dry-run policies are reported with what they would do, never enforced", () => {
    const d = authorizeWire(
      compileWirePolicies([
        pol({ name: "dry-deny", action: "DENY", dryRun: true, rules: [{ clauses: [] }] }),
        pol({ name: "dry-allow", dryRun: true, rules: [] }),
      ]),
      conn(),
    );
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.dryRun, [
      { policy: "shop/dry-deny", action: "DENY", matched: true, dryRun: true },
      { policy: "shop/dry-allow", action: "ALLOW", matched: false, dryRun: true },
    ]);
  });

  test("enums as decoded: unset is the proto3 zero value (GLOBAL, ALLOW), numbers are indexes, unknown is rejected", () => {
    const unset: WireAuthorization = { name: "u", namespace: "x", rules: [] };
    assert.equal(
      decide([unset]),
      "DENY",
      "unset scope is GLOBAL and unset action ALLOW: an ALLOW with no rules",
    );
    const numeric = {
      name: "n",
      namespace: "shop",
      scope: 1,
      action: 1,
      rules: [{ clauses: [] }],
    } as unknown as WireAuthorization;
    assert.equal(decide([numeric]), "DENY");
    const bad = {
      name: "b",
      namespace: "shop",
      scope: "NAMESPACE",
      action: "CUSTOM",
      rules: [{}],
    } as unknown as WireAuthorization;
    const set = compileWirePolicies([bad]);
    assert.equal(set.size, 0);
    assert.deepEqual(set.rejected, [{ policy: "shop/b", reason: "unsupported action CUSTOM" }]);
    assert.equal(authorizeWire(set, conn()).decision, "ALLOW");
  });

  test("a later message with the same name replaces the earlier one", () => {
    assert.equal(
      decide([pol({ action: "DENY", rules: [{ clauses: [] }] }), pol({ action: "DENY", rules: [] })]),
      "ALLOW",
    );
  });

  test("never throws: holes in the message, unparsable peer addresses", () => {
    const holes = {
      name: "h",
      namespace: "shop",
      scope: "NAMESPACE",
      action: "DENY",
      rules: [
        null,
        { clauses: null },
        { clauses: [{ matches: [null, { principals: [null], sourceIps: [null] }] }] },
      ],
    } as unknown as WireAuthorization;
    assert.doesNotThrow(() => authorizeWire(compileWirePolicies([holes]), conn()));
    assert.equal(decide([holes]), "DENY", "the rule with clauses: null has no clauses and matches");
    const d = authorizeWire(compileWirePolicies([]), conn({ ip: "not-an-ip" }));
    assert.equal(d.decision, "DENY");
    assert.match(d.reason, /source address "not-an-ip"/);
  });
});

describe("wire-form L4 evaluator", () => {
  test("no policy allows; an ALLOW policy with no rules denies; an empty rule allows", () => {
    assert.equal(decide([], conn()), "ALLOW");
    assert.equal(decide([pol({ rules: [] })], conn()), "DENY");
    assert.equal(decide([pol({ rules: [{ clauses: [] }] })], conn()), "ALLOW");
  });

  test("a clause with no matches matches (ztunnel); one holding only an empty match never does", () => {
    assert.equal(decide([pol({ action: "DENY", rules: [{ clauses: [{ matches: [] }] }] })], conn()), "DENY");
    assert.equal(
      decide([pol({ action: "DENY", rules: [{ clauses: [{ matches: [{}] }] }] })], conn()),
      "ALLOW",
    );
  });

  test("WORKLOAD_SELECTOR policies apply only when the workload lists them; other namespaces' do not apply", () => {
    const p = pol({ scope: "WORKLOAD_SELECTOR", action: "DENY", rules: [{ clauses: [] }] });
    assert.equal(decide([p], conn()), "ALLOW");
    assert.equal(decide([p], conn({}, { authorizationPolicies: ["shop/p"] })), "DENY");
    assert.equal(
      decide([pol({ namespace: "other", action: "DENY", rules: [{ clauses: [] }] })], conn()),
      "ALLOW",
    );
    assert.equal(
      decide(
        [pol({ namespace: "istio-system", scope: "GLOBAL", action: "DENY", rules: [{ clauses: [] }] })],
        conn(),
      ),
      "DENY",
    );
  });

  test("negative fields, presence and plaintext peers (the static STRICT policy)", () => {
    const strict = pol({
      action: "DENY",
      rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
    });
    assert.equal(decide([strict], conn()), "ALLOW");
    assert.equal(decide([strict], conn({ identity: null })), "DENY");
    const notNs = pol({
      rules: [{ clauses: [{ matches: [{ notNamespaces: [{ prefix: "sh" }] }] }] }],
    });
    assert.equal(decide([notNs], conn()), "DENY");
    assert.equal(decide([notNs], conn({ identity: "spiffe://cluster.local/ns/web/sa/x" })), "ALLOW");
  });

  test("principals, service accounts, ports and IPv4/IPv6 prefixes", () => {
    const p = pol({
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
    const fd = new Uint8Array(16);
    fd[0] = 0xfd;
    const six = pol({
      rules: [{ clauses: [{ matches: [{ sourceIps: [{ address: fd, length: 8 }] }] }] }],
    });
    assert.equal(decide([six], conn({ ip: "fd00::5" })), "ALLOW");
    assert.equal(decide([six], conn({ ip: "10.0.0.1" })), "DENY");
  });

  test("dry-run policies are reported, not enforced; the decision names the deciding policy", () => {
    const dry = pol({ name: "dry", action: "DENY", dryRun: true, rules: [{ clauses: [] }] });
    const d = authorizeWire(compileWirePolicies([dry]), conn());
    assert.equal(d.decision, "ALLOW");
    assert.deepEqual(d.dryRun, [{ policy: "shop/dry", action: "DENY", matched: true, dryRun: true }]);
    const deny = authorizeWire(
      compileWirePolicies([pol({ name: "no", action: "DENY", rules: [{ clauses: [] }] })]),
      conn(),
    );
    assert.equal(deny.policy, "shop/no");
    assert.match(deny.reason, /DENY policy shop\/no/);
  });
});
