// `ambit demo`: what works today, end to end — the bookinfo example's manifests are validated, then
// real requests are decided by the same engine the proxies will use, at L4 (node proxy, no
// waypoint) and L7 (waypoint). The lab-based multi-node demo replaces this when the lab lands.
import { join } from "node:path";
import type { Command } from "commander";
import { loadResourceFiles } from "../../config/files.js";
import { packageRoot } from "../../core/paths.js";
import { authorize, compilePolicySet } from "../../model/authz/index.js";
import type { AuthzRequest, Layer } from "../../model/authz/types.js";
import type { AuthorizationPolicy, PeerAuthentication } from "../../model/resources/registry.js";
import { printProblems, type Io } from "../io.js";

interface Scenario {
  title: string;
  layer: Layer;
  request: AuthzRequest;
}

const REVIEWS = {
  namespace: "bookinfo",
  workloadLabels: { app: "reviews", version: "v1" },
  ip: "10.244.2.5",
  port: 9080,
  serviceAccount: "bookinfo-reviews",
};
const PRODUCTPAGE = {
  namespace: "bookinfo",
  workloadLabels: { app: "productpage", version: "v1" },
  ip: "10.244.1.4",
  port: 9080,
  serviceAccount: "bookinfo-productpage",
};
const FROM_PRODUCTPAGE = {
  principal: "cluster.local/ns/bookinfo/sa/bookinfo-productpage",
  namespace: "bookinfo",
  ip: "10.244.1.4",
};
const FROM_GATEWAY = {
  principal: "cluster.local/ns/frontend/sa/gateway",
  namespace: "frontend",
  ip: "10.244.1.9",
};
const PLAINTEXT = { principal: null, namespace: null, ip: "10.244.3.3" };
const http = (method: string, path: string): AuthzRequest["http"] => ({
  method,
  path,
  host: "reviews.bookinfo.svc.cluster.local:9080",
  headers: {},
  jwt: null,
});

const SCENARIOS: Scenario[] = [
  {
    title: "productpage reads reviews (waypoint, HTTP GET /reviews/1)",
    layer: "L7",
    request: { destination: REVIEWS, source: FROM_PRODUCTPAGE, http: http("GET", "/reviews/1") },
  },
  {
    title: "productpage deletes a review (waypoint, HTTP DELETE)",
    layer: "L7",
    request: { destination: REVIEWS, source: FROM_PRODUCTPAGE, http: http("DELETE", "/reviews/1") },
  },
  {
    title: "the frontend gateway calls reviews directly (waypoint)",
    layer: "L7",
    request: { destination: REVIEWS, source: FROM_GATEWAY, http: http("GET", "/reviews/1") },
  },
  {
    title: "productpage probes an admin path (AUDIT marks it)",
    layer: "L7",
    request: { destination: REVIEWS, source: FROM_PRODUCTPAGE, http: http("GET", "/admin/stats") },
  },
  {
    title: "productpage sneaks a DELETE through a dot-segment path (normalized first)",
    layer: "L7",
    request: {
      destination: REVIEWS,
      source: FROM_PRODUCTPAGE,
      http: http("DELETE", "/admin/%2E%2E/reviews/2"),
    },
  },
  {
    title: "productpage opens TCP to reviews with no waypoint (node proxy)",
    layer: "L4",
    request: { destination: REVIEWS, source: FROM_PRODUCTPAGE, http: null },
  },
  {
    title: "the frontend gateway opens TCP to productpage (node proxy)",
    layer: "L4",
    request: { destination: PRODUCTPAGE, source: FROM_GATEWAY, http: null },
  },
  {
    title: "a plaintext client outside the mesh reaches productpage",
    layer: "L4",
    request: { destination: PRODUCTPAGE, source: PLAINTEXT, http: null },
  },
];

export function registerDemo(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command("demo")
    .description("validate the bookinfo example and show the policy engine deciding real requests")
    .option("-f, --filename <dir>", "manifests to use", join(packageRoot(), "examples", "bookinfo"))
    .action(async (opts: { filename: string }) => {
      const { resources, problems } = await loadResourceFiles([opts.filename]);
      if (problems.length > 0) {
        printProblems(io, problems);
        setExit(1);
        return;
      }
      io.out(`Loaded ${resources.length} resources from ${opts.filename}; all valid.`);
      const set = compilePolicySet({
        authorizationPolicies: resources.filter(
          (r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy",
        ),
        peerAuthentications: resources.filter(
          (r): r is PeerAuthentication => r.kind === "PeerAuthentication",
        ),
      });
      for (const s of SCENARIOS) {
        const d = authorize(set, s.request, s.layer);
        io.out("");
        io.out(`[${s.layer}] ${s.title}`);
        io.out(`  ${d.decision}  ${d.policy ?? "(default)"}: ${d.reason}`);
        if (d.audit.length > 0) io.out(`  audit: ${d.audit.join(", ")}`);
      }
      io.out("");
      io.out("Try it yourself: ambit authz check -f examples/bookinfo --request REQ.json (see README).");
      setExit(0);
    });
}
