// The shared authorization reference cases (<repo>/../shared/conformance/authz-cases.json), loaded
// once for every conformance test, and the policy set a case's resources compile to.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
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

/**
 * Where the cases are: $AMBIT_CONFORMANCE_DIR; else `shared/conformance` beside the repository (CI's
 * layout); else beside the repository this one was cloned from, when that is a local path (so that
 * `git clone . /tmp/x` runs the same cases).
 */
function casesFile(): { file: string; tried: string[] } {
  const name = "authz-cases.json";
  const candidates: string[] = [];
  if (process.env.AMBIT_CONFORMANCE_DIR) candidates.push(join(process.env.AMBIT_CONFORMANCE_DIR, name));
  candidates.push(resolve(repoRoot(), "..", "shared", "conformance", name));
  try {
    const origin = execFileSync("git", ["-C", repoRoot(), "config", "--get", "remote.origin.url"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    if (isAbsolute(origin)) candidates.push(resolve(origin, "..", "shared", "conformance", name));
  } catch {
    // no git, or no origin: the other places only
  }
  return { file: candidates.find((f) => existsSync(f)) ?? "", tried: candidates };
}

export function loadAuthzCases(): AuthzCase[] {
  const { file, tried } = casesFile();
  if (file === "") {
    throw new Error(
      `authz conformance cases not found (tried ${tried.join(", ")}); put shared/conformance beside the repository or set AMBIT_CONFORMANCE_DIR`,
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
