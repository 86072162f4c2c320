// The node proxy decides on the wire form (istio.security.Authorization as istiod sends ztunnel,
// PeerAuthentication folded in). For every shared case, the policies go through the control
// plane's conversion (convert-authz.ts via buildSnapshot, which also gives the destination
// workload its authorizationPolicies list by selector), and the wire evaluator runs on the
// messages after a protobuf round trip (and on the in-memory ones, which must agree). It must
// reach the decision the case expects at L4 (L4 cases) and, for every case and for variants of
// its connection (plaintext peer, another identity, another port, another source address), the
// decision the resource-level engine reaches at L4: one semantics, two forms.
import assert from "node:assert/strict";
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
  compileWirePolicies,
  type WireConnection,
} from "../../src/model/authz/index.js";
import type { AuthzRequest } from "../../src/model/authz/types.js";
import { loadTexts } from "../../src/model/resources/load.js";
import { formatProblem } from "../../src/model/resources/problem.js";
import { loadAuthzCases, policySetOf } from "../support/conformance.js";

const cases = loadAuthzCases();

const roundTrip = <T extends object>(typeUrl: string, m: T): T => decodeAny<T>(encodeAny(typeUrl, m));

/** The request as given, then L4 variants of it (HTTP attributes never reach the node proxy). */
function variants(r: AuthzRequest): { label: string; request: AuthzRequest }[] {
  const src = r.source;
  const dst = r.destination;
  return [
    { label: "as given", request: r },
    { label: "plaintext peer", request: { ...r, source: { principal: null, namespace: null, ip: src.ip } } },
    {
      label: "another identity",
      request: {
        ...r,
        source: { principal: "cluster.local/ns/elsewhere/sa/other", namespace: "elsewhere", ip: src.ip },
      },
    },
    {
      label: "another port",
      request: { ...r, destination: { ...dst, port: dst.port === 9999 ? 9998 : 9999 } },
    },
    { label: "another source address", request: { ...r, source: { ...src, ip: "192.0.2.77" } } },
  ];
}

function connectionOf(r: AuthzRequest, authorizationPolicies: readonly string[]): WireConnection {
  return {
    source: {
      identity: r.source.principal === null ? null : `spiffe://${r.source.principal}`,
      ip: r.source.ip,
    },
    destination: {
      ip: r.destination.ip,
      port: r.destination.port,
      namespace: r.destination.namespace,
      name: "destination",
      authorizationPolicies,
    },
  };
}

let checked = 0;

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
    const inMemory = [...snap.authorizations.values()];
    const decoded = inMemory.map((a) => roundTrip<Authorization>(AUTHORIZATION_TYPE_URL, a));
    for (const [key, a] of snap.authorizations) {
      assert.equal(
        `${a.namespace ?? ""}/${a.name ?? ""}`,
        key,
        "Authorization resources are named namespace/name",
      );
    }
    const workload = [...snap.addresses.values()]
      .map((a) => roundTrip<Address>(ADDRESS_TYPE_URL, a))
      .find((a) => a.workload?.name === "destination")?.workload;
    assert.ok(workload, "the destination pod converts to a workload");
    const listed = workload.authorizationPolicies ?? [];
    for (const key of listed) assert.ok(snap.authorizations.has(key), `${key} is listed and sent`);

    const wireSet = compileWirePolicies(decoded, { rootNamespace: root });
    const memorySet = compileWirePolicies(inMemory, { rootNamespace: root });
    assert.deepEqual(wireSet.rejected, []);
    const engineSet = policySetOf(resources, root);

    for (const { label, request } of variants(c.request)) {
      const conn = connectionOf(request, listed);
      const wire = authorizeWire(wireSet, conn);
      const memory = authorizeWire(memorySet, conn);
      const engine = authorize(engineSet, request, "L4");
      const why = `${label}\nwire: ${wire.reason}\nengine: ${engine.reason}\npolicies: ${JSON.stringify(decoded)}`;
      assert.deepEqual(memory, wire, `in-memory and decoded messages decide alike (${label})`);
      if (label === "as given" && c.layer === "L4") assert.equal(wire.decision, c.expect, why);
      assert.equal(wire.decision, engine.decision, why);
      assert.deepEqual([wire.audit, wire.custom], [[], []]);
      checked++;
    }
  });
}

void test("wire form: every case and variant was checked", () => {
  assert.equal(checked, cases.length * 5);
});
