// The shared authorization reference cases (<repo>/../shared/conformance/authz-cases.json), loaded
// once for every conformance test, and the policy set a case's resources compile to.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { compilePolicySet, type PolicySet } from "../../src/model/authz/index.js";
import type { AuthzRequest, Layer } from "../../src/model/authz/types.js";
import type {
  AnyResource,
  AuthorizationPolicy,
  PeerAuthentication,
} from "../../src/model/resources/registry.js";
import { repoRoot } from "./repo.js";

export interface AuthzCase {
  name: string;
  layer: Layer;
  policies: unknown[];
  rootNamespace?: string;
  request: AuthzRequest;
  expect: "ALLOW" | "DENY";
  note?: string;
}

export function loadAuthzCases(): AuthzCase[] {
  const file = resolve(repoRoot(), "..", "shared", "conformance", "authz-cases.json");
  if (!existsSync(file)) {
    throw new Error(
      `authz conformance cases not found at ${file} (expected <repo>/../shared/conformance/authz-cases.json)`,
    );
  }
  const { cases } = JSON.parse(readFileSync(file, "utf8")) as { cases?: AuthzCase[] };
  if (!Array.isArray(cases) || cases.length === 0) throw new Error(`${file} lists no cases`);
  return cases;
}

/** The engine's policy set for a case's validated resources. */
export function policySetOf(resources: readonly AnyResource[], rootNamespace: string | undefined): PolicySet {
  return compilePolicySet({
    authorizationPolicies: resources.filter(
      (r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy",
    ),
    peerAuthentications: resources.filter((r): r is PeerAuthentication => r.kind === "PeerAuthentication"),
    rootNamespace,
  });
}
