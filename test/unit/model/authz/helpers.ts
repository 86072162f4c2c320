// Builders shared by the authz unit tests: policies go through the real loader (so every test
// policy is a valid, defaulted resource), requests start from one typical mTLS HTTP call.
import assert from "node:assert/strict";
import { authorize, compilePolicySet } from "../../../../src/model/authz/index.js";
import type { AuthzRequest, Decision, Layer } from "../../../../src/model/authz/types.js";
import { loadTexts } from "../../../../src/model/resources/load.js";
import { formatProblem } from "../../../../src/model/resources/problem.js";
import type { AuthorizationPolicy, PeerAuthentication } from "../../../../src/model/resources/registry.js";

export interface Doc {
  kind: "AuthorizationPolicy" | "PeerAuthentication";
  metadata: {
    name: string;
    namespace: string;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
  };
  spec: unknown;
}

/** An AuthorizationPolicy document in namespace `ns` (default "foo"). */
export function ap(
  name: string,
  spec: Record<string, unknown>,
  ns = "foo",
  annotations?: Record<string, string>,
): Doc {
  return {
    kind: "AuthorizationPolicy",
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
    spec,
  };
}

/** A PeerAuthentication document. */
export function pa(name: string, spec: Record<string, unknown>, ns = "foo", creationTimestamp?: string): Doc {
  return {
    kind: "PeerAuthentication",
    metadata: { name, namespace: ns, ...(creationTimestamp ? { creationTimestamp } : {}) },
    spec,
  };
}

export const DRY_RUN = { "istio.io/dry-run": "true" };

/** Validate documents with the project's loader; a problem fails the test that uses them. */
export function load(docs: readonly Doc[]): { aps: AuthorizationPolicy[]; pas: PeerAuthentication[] } {
  const text = JSON.stringify(docs.map((d) => ({ apiVersion: "security.istio.io/v1", ...d })));
  const { resources, problems } = loadTexts([{ file: "test.json", text }]);
  assert.deepEqual(problems.map(formatProblem), [], "test policies must be valid");
  return {
    aps: resources.filter((r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy"),
    pas: resources.filter((r): r is PeerAuthentication => r.kind === "PeerAuthentication"),
  };
}

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object | null ? DeepPartial<NonNullable<T[K]>> | T[K] : T[K];
};

const BASE: AuthzRequest = {
  destination: {
    namespace: "foo",
    workloadLabels: { app: "httpbin", version: "v1" },
    ip: "10.10.1.5",
    port: 8080,
    serviceAccount: "httpbin",
  },
  source: { principal: "cluster.local/ns/bar/sa/sleep", namespace: "bar", ip: "10.10.2.7" },
  http: { method: "GET", path: "/", host: "httpbin.foo.svc.cluster.local", headers: {}, jwt: null },
};

/** The typical request with parts replaced; `http: null` makes it a plain connection. */
export function req(over: DeepPartial<AuthzRequest> = {}): AuthzRequest {
  const http = over.http === null ? null : { ...(BASE.http ?? {}), ...(over.http ?? {}) };
  const out: AuthzRequest = {
    destination: { ...BASE.destination, ...(over.destination ?? {}) } as AuthzRequest["destination"],
    source: { ...BASE.source, ...(over.source ?? {}) },
    http: http as AuthzRequest["http"],
  };
  if (over.waypoint) out.waypoint = over.waypoint;
  return out;
}

export const PLAINTEXT = { principal: null, namespace: null, ip: "192.168.50.5" };

export interface DecideOptions {
  rootNamespace?: string;
  trustDomain?: string;
}

/** Load, compile and decide in one step. */
export function decide(
  docs: readonly Doc[],
  request: AuthzRequest,
  layer: Layer,
  opts: DecideOptions = {},
): Decision {
  const { aps, pas } = load(docs);
  const set = compilePolicySet({ authorizationPolicies: aps, peerAuthentications: pas, ...opts });
  return authorize(set, request, layer);
}

/** The decision letter only, for table tests. */
export function verdict(
  docs: readonly Doc[],
  request: AuthzRequest,
  layer: Layer,
  opts?: DecideOptions,
): "ALLOW" | "DENY" {
  return decide(docs, request, layer, opts).decision;
}

/** An ALLOW policy on httpbin with one rule. */
export function allowRule(rule: Record<string, unknown>, name = "allow"): Doc {
  return ap(name, { selector: { matchLabels: { app: "httpbin" } }, rules: [rule] });
}

/** A DENY policy on httpbin with one rule. */
export function denyRule(rule: Record<string, unknown>, name = "deny"): Doc {
  return ap(name, { selector: { matchLabels: { app: "httpbin" } }, action: "DENY", rules: [rule] });
}

/** A rule that has only `when` conditions. */
export const when = (...conds: Record<string, unknown>[]): Record<string, unknown> => ({ when: conds });
export const from = (source: Record<string, unknown>): Record<string, unknown> => ({ from: [{ source }] });
export const to = (operation: Record<string, unknown>): Record<string, unknown> => ({ to: [{ operation }] });
