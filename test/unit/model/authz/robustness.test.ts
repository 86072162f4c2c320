// Properties over many generated policies and requests: the engine never throws, every decision
// names a real policy of the right action (or none), and a few invariants of Istio's model hold.
import assert from "node:assert/strict";
import { test } from "node:test";
import { authorize, compilePolicySet } from "../../../../src/model/authz/index.js";
import type { AuthzRequest } from "../../../../src/model/authz/types.js";
import { ap, load, type Doc } from "./helpers.js";

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SOURCES: Record<string, string[][]> = {
  principals: [["cluster.local/ns/bar/sa/sleep"], ["*"], ["cluster.local/ns/ba*"], ["*/sa/admin"]],
  notPrincipals: [["*"], ["cluster.local/ns/bar/sa/sleep"]],
  namespaces: [["bar"], ["b*"], ["*"]],
  notNamespaces: [["bar"], ["foo"]],
  ipBlocks: [["10.10.0.0/16"], ["2001:db8::/32"], ["192.168.50.5"]],
  notIpBlocks: [["10.0.0.0/8"]],
  remoteIpBlocks: [["10.10.2.0/24"]],
  requestPrincipals: [["*"], ["iss/sub"], ["iss/*"]],
  notRequestPrincipals: [["*"]],
};
const OPERATIONS: Record<string, string[][]> = {
  hosts: [["*.cluster.local"], ["httpbin.foo.svc.cluster.local"]],
  notHosts: [["evil.com"]],
  ports: [["8080"], ["9090", "15000"]],
  notPorts: [["22"]],
  methods: [["GET"], ["POST", "PUT"]],
  notMethods: [["DELETE"]],
  paths: [["/api/*"], ["*.png"], ["/store/{**}/cart"], ["/"]],
  notPaths: [["/admin*"]],
};
const CONDITIONS: [string, string[]][] = [
  ["request.headers[x-a]", ["1", "2*"]],
  ["source.ip", ["10.10.0.0/16"]],
  ["remote.ip", ["192.168.0.0/16"]],
  ["source.namespace", ["bar"]],
  ["source.principal", ["cluster.local/*"]],
  ["destination.port", ["8080"]],
  ["destination.ip", ["10.10.1.0/24"]],
  ["request.auth.claims[groups]", ["admins"]],
  ["request.auth.claims[scope]", ["write"]],
  ["request.auth.principal", ["iss/sub"]],
  ["connection.sni", ["x.example.com"]],
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function someOf(r: () => number, table: Record<string, string[][]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const keys = Object.keys(table);
  const n = 1 + Math.floor(r() * 2);
  for (let i = 0; i < n; i++) {
    const k = pick(r, keys);
    out[k] = pick(r, table[k] ?? [[]]);
  }
  return out;
}

function genRule(r: () => number): Record<string, unknown> {
  const rule: Record<string, unknown> = {};
  if (r() < 0.5) rule.from = [{ source: someOf(r, SOURCES) }];
  if (r() < 0.5) rule.to = [{ operation: someOf(r, OPERATIONS) }];
  if (r() < 0.3) {
    const [key, values] = pick(r, CONDITIONS);
    rule.when = [r() < 0.7 ? { key, values } : { key, notValues: values }];
  }
  return rule;
}

function genPolicies(r: () => number, i: number): Doc[] {
  const docs: Doc[] = [];
  const n = 1 + Math.floor(r() * 4);
  for (let j = 0; j < n; j++) {
    const action = pick(r, ["ALLOW", "ALLOW", "DENY", "AUDIT"]);
    const rules = r() < 0.1 ? undefined : Array.from({ length: 1 + Math.floor(r() * 2) }, () => genRule(r));
    const selector = r() < 0.5 ? { matchLabels: { app: pick(r, ["httpbin", "other"]) } } : undefined;
    const ns = pick(r, ["foo", "foo", "istio-system", "bar"]);
    docs.push(
      ap(
        `p${i}-${j}`,
        { action, ...(rules ? { rules } : {}), ...(selector ? { selector } : {}) },
        ns,
        r() < 0.1 ? { "istio.io/dry-run": "true" } : undefined,
      ),
    );
  }
  return docs;
}

function genRequest(r: () => number): AuthzRequest {
  const plaintext = r() < 0.25;
  const http = r() < 0.7;
  return {
    destination: {
      namespace: "foo",
      workloadLabels: { app: pick(r, ["httpbin", "other"]) },
      ip: "10.10.1.5",
      port: pick(r, [8080, 9090, 22]),
      serviceAccount: "httpbin",
    },
    source: {
      principal: plaintext
        ? null
        : pick(r, ["cluster.local/ns/bar/sa/sleep", "cluster.local/ns/foo/sa/admin", "other.td/ns/baz/sa/x"]),
      namespace: null,
      ip: pick(r, ["10.10.2.7", "192.168.50.5", "2001:db8::9"]),
    },
    http: http
      ? {
          method: pick(r, ["GET", "POST", "DELETE"]),
          path: pick(r, [
            "/",
            "/api/x",
            "/admin/../api/y",
            "/img/a.png?x",
            "/store//cart",
            "/x%00",
            "/%2e%2e/admin",
          ]),
          host: pick(r, ["httpbin.foo.svc.cluster.local", "EVIL.com", "h:8080"]),
          headers: r() < 0.5 ? { "X-A": pick(r, ["1", "22", "3"]) } : {},
          jwt:
            r() < 0.4
              ? { iss: "iss", sub: "sub", claims: { groups: ["admins"], scope: "read write" } }
              : null,
        }
      : null,
  };
}

void test("generated policies and requests: no exceptions, decisions consistent with the policies", () => {
  const r = rng(20240601);
  for (let i = 0; i < 300; i++) {
    const docs = genPolicies(r, i);
    const { aps } = load(docs);
    const set = compilePolicySet({ authorizationPolicies: aps });
    const byKey = new Map(aps.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
    const denyAll = compilePolicySet({
      authorizationPolicies: [...aps, ...load([ap("zz-deny-all", { action: "DENY", rules: [{}] })]).aps],
    });
    for (let k = 0; k < 10; k++) {
      const request = genRequest(r);
      for (const layer of ["L4", "L7"] as const) {
        const d = authorize(set, request, layer);
        const where = `${JSON.stringify(docs)}\n${JSON.stringify(request)} ${layer}\n${JSON.stringify(d)}`;
        assert.ok(d.decision === "ALLOW" || d.decision === "DENY", where);
        assert.ok(d.reason.length > 0, where);
        if (d.policy !== null) {
          const p = byKey.get(d.policy);
          assert.ok(p, `unknown deciding policy ${d.policy}\n${where}`);
          assert.equal(p.spec.action, d.decision, where);
          assert.notEqual(p.metadata.annotations?.["istio.io/dry-run"], "true", where);
        }
        if (layer === "L4") assert.deepEqual(d.audit, [], where);
        // A DENY-everything policy always wins, except over a request refused before policies run.
        const withDenyAll = authorize(denyAll, request, layer);
        assert.equal(withDenyAll.decision, "DENY", where);
      }
    }
  }
});
