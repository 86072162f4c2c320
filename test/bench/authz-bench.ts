// Micro-benchmark of the authorization engine: compile 100 mixed policies, then time decisions at
// L4 and L7 over varied requests. Run: npm run build && node dist/test/bench/authz-bench.js
import { authorize, compilePolicySet } from "../../src/model/authz/index.js";
import type { AuthzRequest, Layer } from "../../src/model/authz/types.js";
import type { AuthorizationPolicy } from "../../src/model/resources/registry.js";
import type { AuthorizationPolicySpec } from "../../src/model/resources/security.js";

const NAMESPACES = 10;
const POLICIES = 100;
const WARMUP = 50_000;
const ITERATIONS = 200_000;

function policy(
  name: string,
  namespace: string,
  spec: Partial<AuthorizationPolicySpec>,
): AuthorizationPolicy {
  return {
    apiVersion: "security.istio.io/v1",
    kind: "AuthorizationPolicy",
    metadata: { name, namespace },
    spec: { action: "ALLOW", ...spec },
  };
}

/** Ten shapes of policy, cycled so every namespace gets a mix of fields and actions. */
function makePolicies(): AuthorizationPolicy[] {
  const out: AuthorizationPolicy[] = [];
  for (let i = 0; i < POLICIES; i++) {
    const ns = i < 4 ? "istio-system" : `ns${i % NAMESPACES}`;
    const app = `svc${i % 7}`;
    const selector = i % 3 === 0 ? undefined : { matchLabels: { app } };
    const name = `p${i}`;
    switch (i % 10) {
      case 0:
        out.push(
          policy(name, ns, {
            selector,
            action: "DENY",
            rules: [
              {
                from: [{ source: { notNamespaces: [ns, "istio-system"] } }],
                to: [{ operation: { paths: ["/admin/*"] } }],
              },
            ],
          }),
        );
        break;
      case 1:
        out.push(
          policy(name, ns, {
            selector,
            rules: [
              {
                from: [
                  {
                    source: {
                      principals: [
                        `cluster.local/ns/ns${(i + 1) % NAMESPACES}/sa/client`,
                        "cluster.local/ns/ns2/*",
                      ],
                    },
                  },
                ],
                to: [{ operation: { methods: ["GET", "HEAD"], paths: ["/api/{*}/items", "/static/*"] } }],
              },
            ],
          }),
        );
        break;
      case 2:
        out.push(
          policy(name, ns, {
            selector,
            rules: [
              {
                from: [{ source: { ipBlocks: ["10.20.0.0/16", "192.168.1.0/24", "fd00::/8"] } }],
                to: [{ operation: { ports: ["8080", "9090"] } }],
              },
            ],
          }),
        );
        break;
      case 3:
        out.push(
          policy(name, ns, {
            selector,
            action: "DENY",
            rules: [
              { when: [{ key: "request.headers[x-block]", values: ["yes", "true"] }] },
              { from: [{ source: { ipBlocks: ["203.0.113.0/24"] } }] },
            ],
          }),
        );
        break;
      case 4:
        out.push(
          policy(name, ns, {
            selector,
            rules: [
              {
                from: [{ source: { requestPrincipals: ["https://issuer.example.com/*"] } }],
                when: [{ key: "request.auth.claims[groups]", values: ["admins", "ops"] }],
              },
            ],
          }),
        );
        break;
      case 5:
        out.push(
          policy(name, ns, {
            selector,
            rules: [
              { to: [{ operation: { hosts: ["*.example.com", "api.internal"], notMethods: ["DELETE"] } }] },
            ],
          }),
        );
        break;
      case 6:
        out.push(
          policy(name, ns, {
            selector,
            rules: [
              { from: [{ source: { namespaces: [`ns${(i + 3) % NAMESPACES}`, "ns1"] } }] },
              { when: [{ key: "source.ip", values: ["10.0.0.0/8"] }] },
            ],
          }),
        );
        break;
      case 7:
        out.push(
          policy(name, ns, {
            selector,
            action: "DENY",
            rules: [
              {
                to: [{ operation: { methods: ["POST"], notPaths: ["/api/*"] } }],
                when: [{ key: "request.auth.claims[scope]", notValues: ["write"] }],
              },
            ],
          }),
        );
        break;
      case 8:
        out.push(
          policy(name, ns, {
            selector,
            rules: [
              {
                from: [{ source: { serviceAccounts: ["client", "ns3/worker"] } }],
                to: [{ operation: { ports: ["8080"] } }],
              },
            ],
          }),
        );
        break;
      default:
        out.push(
          policy(name, ns, {
            selector,
            rules: [
              {
                when: [
                  { key: "destination.port", values: ["8080"] },
                  { key: "request.headers[user-agent]", values: ["curl/*"] },
                ],
              },
            ],
          }),
        );
    }
  }
  return out;
}

function makeRequests(): AuthzRequest[] {
  const out: AuthzRequest[] = [];
  const methods = ["GET", "POST", "HEAD", "DELETE"];
  const paths = ["/api/v1/items", "/static/app.js", "/admin/users", "/api/../admin/x", "/health?probe=1"];
  for (let i = 0; i < 64; i++) {
    const ns = `ns${i % NAMESPACES}`;
    const plaintext = i % 9 === 0;
    out.push({
      destination: {
        namespace: ns,
        workloadLabels: { app: `svc${i % 7}`, version: "v1" },
        ip: `10.${i % 4}.1.${i}`,
        port: i % 3 === 0 ? 9090 : 8080,
        serviceAccount: "server",
      },
      source: {
        principal: plaintext
          ? null
          : `cluster.local/ns/ns${(i * 3) % NAMESPACES}/sa/${i % 2 === 0 ? "client" : "worker"}`,
        namespace: plaintext ? null : `ns${(i * 3) % NAMESPACES}`,
        ip: i % 5 === 0 ? `fd00::${i}` : `10.20.${i}.7`,
      },
      http: {
        method: methods[i % methods.length] ?? "GET",
        path: paths[i % paths.length] ?? "/",
        host: i % 2 === 0 ? "api.example.com" : "API.internal",
        headers: {
          "User-Agent": i % 3 === 0 ? "curl/8.0" : "Mozilla/5.0",
          ...(i % 11 === 0 ? { "x-block": "yes" } : {}),
        },
        jwt:
          i % 4 === 0
            ? {
                iss: "https://issuer.example.com",
                sub: `user-${i}`,
                claims: { groups: ["ops"], scope: "read write" },
              }
            : null,
      },
    });
  }
  return out;
}

function timeLayer(
  set: ReturnType<typeof compilePolicySet>,
  reqs: AuthzRequest[],
  layer: Layer,
): { nsPerDecision: number; allowed: number } {
  let allowed = 0;
  for (let i = 0; i < WARMUP; i++) authorize(set, reqs[i % reqs.length] as AuthzRequest, layer);
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    if (authorize(set, reqs[i % reqs.length] as AuthzRequest, layer).decision === "ALLOW") allowed++;
  }
  const elapsed = Number(process.hrtime.bigint() - start);
  return { nsPerDecision: elapsed / ITERATIONS, allowed };
}

const policies = makePolicies();
const compileRuns = 20;
// Fresh copies each run: compiled matchers are cached per value list, and a re-compile of the very
// same objects would measure the cache, not the compiler.
const copies = Array.from({ length: compileRuns + 1 }, () => structuredClone(policies));
let set = compilePolicySet({ authorizationPolicies: copies[compileRuns] ?? policies });
const compileStart = process.hrtime.bigint();
for (let i = 0; i < compileRuns; i++)
  set = compilePolicySet({ authorizationPolicies: copies[i] ?? policies });
const compileMs = Number(process.hrtime.bigint() - compileStart) / 1e6 / compileRuns;

const reqs = makeRequests();
console.log(
  `authz micro-benchmark: ${policies.length} policies in ${NAMESPACES + 1} namespaces, ${reqs.length} distinct requests`,
);
console.log(`compile: ${compileMs.toFixed(2)} ms per policy set (mean of ${compileRuns})`);
for (const layer of ["L4", "L7"] as const) {
  const r = timeLayer(set, reqs, layer);
  console.log(
    `${layer}: ${r.nsPerDecision.toFixed(0)} ns/decision over ${ITERATIONS} decisions (${((r.allowed / ITERATIONS) * 100).toFixed(0)}% allowed)`,
  );
}
