// Shared authorization reference cases (../shared/conformance/authz-cases.json beside the repo):
// every case's policies must validate, and the engine must reach the decision Istio reaches.
import assert from "node:assert/strict";
import { test } from "node:test";
import { authorize } from "../../src/model/authz/index.js";
import { loadTexts } from "../../src/model/resources/load.js";
import { formatProblem } from "../../src/model/resources/problem.js";
import { loadAuthzCases, policySetOf } from "../support/conformance.js";

for (const c of loadAuthzCases()) {
  void test(c.name, () => {
    const { resources, problems } = loadTexts([{ file: `${c.name}.json`, text: JSON.stringify(c.policies) }]);
    assert.deepEqual(problems.map(formatProblem), [], "the case's policies must validate");
    const d = authorize(policySetOf(resources, c.rootNamespace), c.request, c.layer);
    assert.equal(d.decision, c.expect, `${c.note ?? ""}\nreason: ${d.reason}`);
  });
}
