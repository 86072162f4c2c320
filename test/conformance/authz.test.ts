// Shared authorization reference cases (../shared/conformance/authz-cases.json beside the repo):
// every case's policies must validate, and the engine must reach the decision Istio reaches.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { authorize, compilePolicySet } from "../../src/model/authz/index.js";
import type { AuthzRequest, Layer } from "../../src/model/authz/types.js";
import { loadTexts } from "../../src/model/resources/load.js";
import { formatProblem } from "../../src/model/resources/problem.js";
import type { AuthorizationPolicy, PeerAuthentication } from "../../src/model/resources/registry.js";

interface Case {
  name: string;
  layer: Layer;
  policies: unknown[];
  rootNamespace?: string;
  request: AuthzRequest;
  expect: "ALLOW" | "DENY";
  note?: string;
}

/** Compiled tests run from <repo>/dist/test/conformance; the repository root holds package.json. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir)
      throw new Error(`cannot find the repository root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

const casesFile = resolve(repoRoot(), "..", "shared", "conformance", "authz-cases.json");
if (!existsSync(casesFile)) {
  throw new Error(
    `authz conformance cases not found at ${casesFile} (expected <repo>/../shared/conformance/authz-cases.json)`,
  );
}
const { cases } = JSON.parse(readFileSync(casesFile, "utf8")) as { cases?: Case[] };
if (!Array.isArray(cases) || cases.length === 0) throw new Error(`${casesFile} lists no cases`);

for (const c of cases) {
  void test(c.name, () => {
    const { resources, problems } = loadTexts([{ file: `${c.name}.json`, text: JSON.stringify(c.policies) }]);
    assert.deepEqual(problems.map(formatProblem), [], "the case's policies must validate");
    const set = compilePolicySet({
      authorizationPolicies: resources.filter(
        (r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy",
      ),
      peerAuthentications: resources.filter((r): r is PeerAuthentication => r.kind === "PeerAuthentication"),
      rootNamespace: c.rootNamespace,
    });
    const d = authorize(set, c.request, c.layer);
    assert.equal(d.decision, c.expect, `${c.note ?? ""}\nreason: ${d.reason}`);
  });
}
