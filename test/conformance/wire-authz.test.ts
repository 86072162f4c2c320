// The node proxy decides on the wire form (istio.security.Authorization as istiod sends ztunnel,
// PeerAuthentication folded in). For every shared case, the policies go through the control
// plane's conversion and a protobuf round trip, and the wire evaluator must reach the decision
// the case expects at L4 — and, for every case, the decision the resource-level engine reaches
// at L4: one semantics, two forms.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  decodeAny,
  encodeAny,
  type Address,
  type Authorization,
} from "../../src/api/xds-types.js";
import { buildSnapshot } from "../../src/controlplane/xds/convert.js";
import {
  authorize,
  authorizeWire,
  compilePolicySet,
  compileWirePolicies,
} from "../../src/model/authz/index.js";
import type { AuthzRequest, Layer } from "../../src/model/authz/types.js";
import { loadTexts } from "../../src/model/resources/load.js";
import { formatProblem } from "../../src/model/resources/problem.js";
import type { AuthorizationPolicy, PeerAuthentication } from "../../src/model/resources/registry.js";
import { repoRoot } from "../support/repo.js";

interface Case {
  name: string;
  layer: Layer;
  policies: unknown[];
  rootNamespace?: string;
  request: AuthzRequest;
  expect: "ALLOW" | "DENY";
}

const casesFile = resolve(repoRoot(), "..", "shared", "conformance", "authz-cases.json");
if (!existsSync(casesFile)) throw new Error(`authz conformance cases not found at ${casesFile}`);
const { cases } = JSON.parse(readFileSync(casesFile, "utf8")) as { cases: Case[] };

const roundTrip = <T extends object>(typeUrl: string, m: T): T => decodeAny<T>(encodeAny(typeUrl, m));

for (const c of cases) {
  void test(`wire form: ${c.name}`, () => {
    const d = c.request.destination;
    const root = c.rootNamespace ?? "istio-system";
    const extra = [
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: d.namespace, labels: { "istio.io/dataplane-mode": "ambient" } },
      },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "destination", namespace: d.namespace, labels: d.workloadLabels },
        spec: { nodeName: "n1", serviceAccountName: d.serviceAccount },
        status: { podIP: d.ip },
      },
    ];
    const { resources, problems } = loadTexts([
      { file: `${c.name}.json`, text: JSON.stringify([...c.policies, ...extra]) },
    ]);
    assert.deepEqual(problems.map(formatProblem), []);
    const snap = buildSnapshot({ resources, podIps: new Map(), revocations: [], rootNamespace: root });
    const auths = [...snap.authorizations.values()].map((a) =>
      roundTrip<Authorization>(AUTHORIZATION_TYPE_URL, a),
    );
    const workload = [...snap.addresses.values()]
      .map((a) => roundTrip<Address>(ADDRESS_TYPE_URL, a))
      .find((a) => a.workload?.name === "destination")?.workload;
    assert.ok(workload, "the destination pod converts to a workload");
    const wire = authorizeWire(compileWirePolicies(auths, { rootNamespace: root }), {
      source: {
        identity: c.request.source.principal === null ? null : `spiffe://${c.request.source.principal}`,
        ip: c.request.source.ip,
      },
      destination: {
        ip: d.ip,
        port: d.port,
        namespace: d.namespace,
        name: "destination",
        authorizationPolicies: workload.authorizationPolicies ?? [],
      },
    });
    const engine = authorize(
      compilePolicySet({
        authorizationPolicies: resources.filter(
          (r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy",
        ),
        peerAuthentications: resources.filter(
          (r): r is PeerAuthentication => r.kind === "PeerAuthentication",
        ),
        rootNamespace: root,
      }),
      c.request,
      "L4",
    );
    const why = `wire: ${wire.reason}\nengine: ${engine.reason}\npolicies: ${JSON.stringify(auths)}`;
    if (c.layer === "L4") assert.equal(wire.decision, c.expect, why);
    assert.equal(wire.decision, engine.decision, why);
  });
}
