// Every source, operation and condition field at L7 (HTTP), with its not* twin, the plaintext
// (no identity) behaviour, and how fields, values, sources and rules combine.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AuthzRequest } from "../../../../src/model/authz/types.js";
import { allowRule, denyRule, from, PLAINTEXT, req, to, verdict, when } from "./helpers.js";

/** ALLOW when the single rule matches the request at L7, DENY otherwise. */
const allows = (rule: Record<string, unknown>, request: AuthzRequest = req()): boolean =>
  verdict([allowRule(rule)], request, "L7") === "ALLOW";
const jwt = (
  claims: Record<string, unknown>,
  iss = "https://issuer.example.com/auth",
  sub = "user-1",
): AuthzRequest => req({ http: { jwt: { iss, sub, claims: { iss, sub, ...claims } } } });

void describe("source", () => {
  void test("principals: exact, prefix, suffix, '*'", () => {
    assert.ok(allows(from({ principals: ["cluster.local/ns/bar/sa/sleep"] })));
    assert.ok(allows(from({ principals: ["cluster.local/ns/bar/*"] })));
    assert.ok(allows(from({ principals: ["*/sa/sleep"] })));
    assert.ok(allows(from({ principals: ["*"] })));
    assert.ok(!allows(from({ principals: ["cluster.local/ns/bar/sa/other"] })));
    assert.ok(!allows(from({ principals: ["*/sa/admin"] })));
  });

  void test("a principal written with spiffe:// in the request is the same identity", () => {
    assert.ok(
      allows(
        from({ principals: ["cluster.local/ns/bar/sa/sleep"] }),
        req({ source: { principal: "spiffe://cluster.local/ns/bar/sa/sleep" } }),
      ),
    );
  });

  void test("a plaintext peer has no identity: positive identity fields fail, even '*'; negative ones succeed", () => {
    const plain = req({ source: PLAINTEXT });
    for (const field of ["principals", "namespaces"])
      assert.ok(!allows(from({ [field]: ["*"] }), plain), field);
    assert.ok(!allows(from({ serviceAccounts: ["sleep"] }), plain));
    assert.ok(allows(from({ notPrincipals: ["*"] }), plain));
    assert.ok(allows(from({ notNamespaces: ["bar"] }), plain));
    assert.ok(allows(from({ notServiceAccounts: ["bar/sleep"] }), plain));
    assert.ok(!allows(when({ key: "source.principal", values: ["*"] }), plain));
    assert.ok(allows(when({ key: "source.namespace", notValues: ["bar"] }), plain));
  });

  void test("a plaintext peer's claimed namespace is not an identity", () => {
    assert.ok(!allows(from({ namespaces: ["bar"] }), req({ source: { principal: null, namespace: "bar" } })));
  });

  void test("notPrincipals excludes the listed identities", () => {
    assert.ok(!allows(from({ notPrincipals: ["cluster.local/ns/bar/sa/sleep"] })));
    assert.ok(allows(from({ notPrincipals: ["cluster.local/ns/baz/*"] })));
  });

  void test("namespaces come from the peer identity", () => {
    assert.ok(allows(from({ namespaces: ["bar"] })));
    assert.ok(allows(from({ namespaces: ["ba*"] })));
    assert.ok(allows(from({ namespaces: ["*r"] })));
    assert.ok(!allows(from({ namespaces: ["baz"] })));
    assert.ok(!allows(from({ notNamespaces: ["bar"] })));
  });

  void test("serviceAccounts: a bare name is in the policy's namespace; ns/name is explicit", () => {
    assert.ok(!allows(from({ serviceAccounts: ["sleep"] })), "policy is in foo, caller is bar/sleep");
    assert.ok(allows(from({ serviceAccounts: ["bar/sleep"] })));
    assert.ok(
      allows(
        from({ serviceAccounts: ["sleep"] }),
        req({ source: { principal: "cluster.local/ns/foo/sa/sleep", namespace: "foo" } }),
      ),
    );
    assert.ok(!allows(from({ notServiceAccounts: ["bar/sleep"] })));
    assert.ok(allows(from({ notServiceAccounts: ["sleep"] })));
  });

  void test("requestPrincipals: iss/sub split at the last '/', wildcards on either side", () => {
    const r = jwt({});
    assert.ok(allows(from({ requestPrincipals: ["https://issuer.example.com/auth/user-1"] }), r));
    assert.ok(allows(from({ requestPrincipals: ["https://issuer.example.com/auth/*"] }), r));
    assert.ok(allows(from({ requestPrincipals: ["*"] }), r));
    assert.ok(allows(from({ requestPrincipals: ["*/user-1"] }), r));
    assert.ok(allows(from({ requestPrincipals: ["*example.com/auth/user-1"] }), r));
    assert.ok(allows(from({ requestPrincipals: ["https://issuer.example.com/auth/user-*"] }), r));
    assert.ok(
      allows(from({ requestPrincipals: ["https:*"] }), r),
      "no '/' at all → issuer prefix, any subject",
    );
    assert.ok(
      !allows(from({ requestPrincipals: ["https://*"] }), r),
      "split at the last '/': issuer must equal \"https:/\"",
    );
    assert.ok(!allows(from({ requestPrincipals: ["https://issuer.example.com/auth/user-2"] }), r));
    assert.ok(!allows(from({ requestPrincipals: ["https://issuer.example.com/user-1"] }), r));
    assert.ok(!allows(from({ requestPrincipals: ["*"] })), "no token, no request principal");
  });

  void test("notRequestPrincipals ['*'] matches token-less requests only", () => {
    assert.equal(verdict([denyRule(from({ notRequestPrincipals: ["*"] }))], req(), "L7"), "DENY");
    assert.equal(verdict([denyRule(from({ notRequestPrincipals: ["*"] }))], jwt({}), "L7"), "ALLOW");
  });

  void test("ipBlocks / notIpBlocks / remoteIpBlocks match the peer address (v4 and v6)", () => {
    assert.ok(allows(from({ ipBlocks: ["10.10.2.0/24"] })));
    assert.ok(allows(from({ ipBlocks: ["10.10.2.7"] })));
    assert.ok(!allows(from({ ipBlocks: ["10.20.0.0/16"] })));
    assert.ok(!allows(from({ notIpBlocks: ["10.0.0.0/8"] })));
    assert.ok(allows(from({ remoteIpBlocks: ["10.10.0.0/16"] })));
    assert.ok(!allows(from({ notRemoteIpBlocks: ["10.10.0.0/16"] })));
    const v6 = req({ source: { ip: "2001:db8::7" } });
    assert.ok(allows(from({ ipBlocks: ["2001:db8::/32"] }), v6));
    assert.ok(!allows(from({ ipBlocks: ["2001:db9::/32", "10.0.0.0/8"] }), v6));
    assert.ok(allows(from({ notIpBlocks: ["10.0.0.0/8"] }), v6));
  });

  void test("fields inside a source are AND'ed; sources are OR'ed", () => {
    assert.ok(!allows(from({ principals: ["cluster.local/ns/bar/sa/sleep"], ipBlocks: ["10.20.0.0/16"] })));
    assert.ok(
      allows({ from: [{ source: { namespaces: ["nope"] } }, { source: { ipBlocks: ["10.10.2.7"] } }] }),
    );
  });

  void test("an empty value list counts as absent", () => {
    assert.ok(allows(from({ principals: [], notPrincipals: [] })));
  });
});

void describe("operation", () => {
  void test("hosts are case-insensitive; an exact host does not match host:port", () => {
    assert.ok(allows(to({ hosts: ["HTTPBIN.foo.svc.cluster.local"] })));
    assert.ok(
      allows(
        to({ hosts: ["*.svc.cluster.local"] }),
        req({ http: { host: "HttpBin.Foo.SVC.cluster.local" } }),
      ),
    );
    assert.ok(
      !allows(to({ hosts: ["httpbin.example.com"] }), req({ http: { host: "httpbin.example.com:8080" } })),
    );
    assert.ok(
      allows(to({ hosts: ["httpbin.example.com:*"] }), req({ http: { host: "httpbin.example.com:8080" } })),
    );
    assert.ok(!allows(to({ notHosts: ["*.cluster.local"] })));
    assert.ok(allows(to({ notHosts: ["deny.example.com"] })));
  });

  void test("methods are exact and case-sensitive", () => {
    assert.ok(allows(to({ methods: ["GET", "HEAD"] })));
    assert.ok(!allows(to({ methods: ["get"] })));
    assert.ok(!allows(to({ methods: ["POST"] })));
    assert.ok(allows(to({ notMethods: ["DELETE"] })));
    assert.ok(!allows(to({ notMethods: ["GET"] })));
  });

  void test("ports and notPorts match the destination port", () => {
    assert.ok(allows(to({ ports: ["8080"] })));
    assert.ok(!allows(to({ ports: ["9090"] })));
    assert.ok(!allows(to({ notPorts: ["8080"] })));
    assert.ok(allows(to({ notPorts: ["9090"] })));
  });

  void test("paths match the normalized path", () => {
    assert.ok(allows(to({ paths: ["/private"] }), req({ http: { path: "/public/%2E%2E/private" } })));
    assert.ok(allows(to({ paths: ["/data"] }), req({ http: { path: "/data?x=1#f" } })));
    assert.ok(!allows(to({ paths: ["/a/b"] }), req({ http: { path: "/a//b" } })), "slashes are not merged");
    assert.ok(!allows(to({ paths: ["/Admin"] }), req({ http: { path: "/admin" } })));
    assert.ok(allows(to({ paths: ["/store/{**}/cart"] }), req({ http: { path: "/store//cart" } })));
    assert.ok(allows(to({ paths: ["/foo/{*}/bar"] }), req({ http: { path: "/foo/x/bar" } })));
    assert.ok(!allows(to({ notPaths: ["/admin/*"] }), req({ http: { path: "/public/../admin/x" } })));
  });

  void test("a path with an encoded NUL is refused before any policy", () => {
    const d = verdict([], req({ http: { path: "/x%00" } }), "L7");
    assert.equal(d, "DENY");
  });

  void test("fields inside an operation are AND'ed; operations are OR'ed", () => {
    const rule = {
      to: [
        { operation: { methods: ["GET"], paths: ["/info*"] } },
        { operation: { methods: ["POST"], paths: ["/data"] } },
      ],
    };
    assert.ok(allows(rule, req({ http: { path: "/info/x" } })));
    assert.ok(!allows(rule, req({ http: { path: "/data" } })));
    assert.ok(allows(rule, req({ http: { path: "/data", method: "POST" } })));
  });
});

void describe("when", () => {
  const cond = (key: string, values?: string[], notValues?: string[]): Record<string, unknown> =>
    when({ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) });

  void test("request.headers: names case-insensitive, values exact/prefix/suffix, '*' is presence", () => {
    const r = req({ http: { headers: { "X-Foo": "bar-value", "User-Agent": "Mozilla/5.0", Empty: "" } } });
    assert.ok(allows(cond("request.headers[x-foo]", ["bar-value"]), r));
    assert.ok(allows(cond("request.headers[X-FOO]", ["bar*"]), r));
    assert.ok(allows(cond("request.headers[user-agent]", ["*5.0"]), r));
    assert.ok(allows(cond("request.headers[empty]", ["*"]), r), "present, even with an empty value");
    assert.ok(!allows(cond("request.headers[x-missing]", ["*"]), r));
    assert.ok(!allows(cond("request.headers[x-foo]", ["other"]), r));
    assert.ok(
      allows(cond("request.headers[x-missing]", undefined, ["x"]), r),
      "notValues hold for an absent header",
    );
    assert.ok(!allows(cond("request.headers[x-foo]", ["bar*"], ["bar-value"]), r));
  });

  void test("source.ip, remote.ip, destination.ip, destination.port", () => {
    assert.ok(allows(cond("source.ip", ["10.10.2.0/24"])));
    assert.ok(allows(cond("remote.ip", ["10.10.2.7"])));
    assert.ok(!allows(cond("source.ip", undefined, ["10.0.0.0/8"])));
    assert.ok(allows(cond("destination.ip", ["10.10.1.0/24"])));
    assert.ok(!allows(cond("destination.ip", ["1.2.3.4"])));
    assert.ok(allows(cond("destination.port", ["8080", "9090"])));
    assert.ok(!allows(cond("destination.port", undefined, ["8080"])));
  });

  void test("source.namespace, source.principal, source.serviceAccount", () => {
    assert.ok(allows(cond("source.namespace", ["bar"])));
    assert.ok(!allows(cond("source.namespace", undefined, ["bar"])));
    assert.ok(allows(cond("source.principal", ["cluster.local/ns/bar/*"])));
    assert.ok(allows(cond("source.serviceAccount", ["bar/sleep"])));
    assert.ok(!allows(cond("source.serviceAccount", ["sleep"])));
  });

  void test("request.auth.principal, audiences (string or list) and presenter", () => {
    assert.ok(allows(cond("request.auth.principal", ["https://issuer.example.com/auth/user-1"]), jwt({})));
    assert.ok(!allows(cond("request.auth.principal", ["*"])));
    assert.ok(allows(cond("request.auth.audiences", ["api"]), jwt({ aud: "api" })));
    assert.ok(allows(cond("request.auth.audiences", ["api"]), jwt({ aud: ["web", "api"] })));
    assert.ok(!allows(cond("request.auth.audiences", ["api"]), jwt({ aud: ["web"] })));
    assert.ok(allows(cond("request.auth.presenter", ["client-*"]), jwt({ azp: "client-42" })));
  });

  void test("request.auth.claims: strings, lists, nested objects, space-delimited scope/permission", () => {
    assert.ok(allows(cond("request.auth.claims[iss]", ["https://issuer.example.com/auth"]), jwt({})));
    assert.ok(
      allows(cond("request.auth.claims[groups]", ["group-2"]), jwt({ groups: ["group-1", "group-2"] })),
    );
    assert.ok(
      !allows(cond("request.auth.claims[groups]", ["group-3"]), jwt({ groups: ["group-1", "group-2"] })),
    );
    assert.ok(
      allows(cond("request.auth.claims[nested][key1]", ["valueA"]), jwt({ nested: { key1: "valueA" } })),
    );
    assert.ok(
      allows(
        cond("request.auth.claims[nested][nested-2][key1]", ["valueA"]),
        jwt({ nested: { "nested-2": { key1: ["valueA"] } } }),
      ),
    );
    assert.ok(
      !allows(cond("request.auth.claims[nested][key1]", ["valueA"]), jwt({ nested: { key2: "valueA" } })),
    );
    assert.ok(allows(cond("request.auth.claims[scope]", ["write"]), jwt({ scope: "read write" })));
    assert.ok(allows(cond("request.auth.claims[permission]", ["admin"]), jwt({ permission: "admin audit" })));
    assert.ok(
      !allows(cond("request.auth.claims[other]", ["write"]), jwt({ other: "read write" })),
      "only scope/permission are split",
    );
    assert.ok(
      !allows(cond("request.auth.claims[admin]", ["true"]), jwt({ admin: true })),
      "non-string claims never match strings",
    );
    assert.ok(!allows(cond("request.auth.claims[groups]", ["*"])), "no token, no claims");
    assert.ok(
      allows(cond("request.auth.claims[groups]", undefined, ["x"])),
      "notValues hold without a token",
    );
  });

  void test("connection.sni and experimental keys are unknown here: values never match, notValues hold", () => {
    assert.ok(!allows(cond("connection.sni", ["*"])));
    assert.ok(allows(cond("connection.sni", undefined, ["x.example.com"])));
    assert.ok(!allows(cond("experimental.envoy.filters.network.mysql_proxy[db.table]", ["[update]"])));
  });

  void test("all conditions are AND'ed, values OR'ed", () => {
    assert.ok(
      allows(
        when(
          { key: "source.namespace", values: ["x", "bar"] },
          { key: "destination.port", values: ["8080"] },
        ),
      ),
    );
    assert.ok(
      !allows(when({ key: "source.namespace", values: ["bar"] }, { key: "destination.port", values: ["1"] })),
    );
  });

  void test("from, to and when must all match", () => {
    const rule = {
      ...from({ namespaces: ["bar"] }),
      ...to({ methods: ["GET"] }),
      ...when({ key: "request.headers[x-a]", values: ["1"] }),
    };
    assert.ok(allows(rule, req({ http: { headers: { "x-a": "1" } } })));
    assert.ok(!allows(rule, req({ http: { headers: { "x-a": "2" } } })));
    assert.ok(!allows(rule, req({ http: { method: "PUT", headers: { "x-a": "1" } } })));
  });
});

void describe("trust domain", () => {
  void test("at L7, principals written for cluster.local match the mesh trust domain", () => {
    const r = req({ source: { principal: "example.org/ns/bar/sa/sleep" } });
    const docs = [allowRule(from({ principals: ["cluster.local/ns/bar/sa/sleep"] }))];
    assert.equal(verdict(docs, r, "L7", { trustDomain: "example.org" }), "ALLOW");
    assert.equal(verdict(docs, r, "L7"), "DENY", "without the mesh trust domain set, no rewrite");
    assert.equal(
      verdict(docs, req({ http: null, source: { principal: "example.org/ns/bar/sa/sleep" } }), "L4", {
        trustDomain: "example.org",
      }),
      "DENY",
      "ztunnel gets principals as written",
    );
    assert.equal(
      verdict([allowRule(from({ principals: ["other.td/ns/bar/sa/sleep"] }))], r, "L7", {
        trustDomain: "example.org",
      }),
      "DENY",
    );
  });
});
