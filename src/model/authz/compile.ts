// AuthorizationPolicy / PeerAuthentication resources → a PolicySet that evaluates fast: policies
// indexed by namespace and action, each with its rules compiled once per enforcement mode.
import type { PolicyTargetRef } from "../resources/common.js";
import type { AuthorizationPolicy, PeerAuthentication } from "../resources/registry.js";
import { describeRule } from "./describe.js";
import { convertRules, type Mode } from "./l4.js";
import { compilePeerAuthentications, type PeerAuthnIndex } from "./peer-authn.js";
import { rulePred, type Pred, type RuleEnv } from "./rules.js";
import type { Action } from "./types.js";

export interface CompiledRule {
  /** Index of the rule in the policy as written. */
  index: number;
  test: Pred;
  /** "rule 0 matched (methods GET)". */
  matchText: string;
}

/** A policy's rules as one enforcement mode sees them. */
export interface CompiledForm {
  /** Empty: the policy never matches (no rules written, or all dropped). */
  rules: readonly CompiledRule[];
  /** ALLOW rules omitted because they need attributes this mode lacks. */
  dropped: readonly number[];
  /** Attribute names this mode could not see. */
  removed: readonly string[];
  /** "rules 0, 2 of ns/name" when ALLOW rules were dropped, else "" (ready for reasons). */
  droppedText: string;
}

export type Scope =
  | { kind: "workload"; labels: readonly [string, string][] }
  | { kind: "targetRefs"; refs: readonly PolicyTargetRef[] };

export interface CompiledPolicy {
  /** "namespace/name". */
  key: string;
  namespace: string;
  action: Action;
  dryRun: boolean;
  scope: Scope;
  /** HTTP request at an L7 proxy. */
  http: CompiledForm;
  /** Non-HTTP connection at an L7 proxy (Envoy RBAC "for TCP"). */
  tcp: CompiledForm;
  /** Node proxy without a waypoint; null when istiod does not send the policy to ztunnel. */
  l4: CompiledForm | null;
}

/** The policies of one namespace (or the targetRef policies of one namespace), split by role. */
export interface Bucket {
  deny: readonly CompiledPolicy[];
  allow: readonly CompiledPolicy[];
  audit: readonly CompiledPolicy[];
  custom: readonly CompiledPolicy[];
  /** Dry-run policies of every action: evaluated and reported, never enforced. */
  dryRun: readonly CompiledPolicy[];
}

export interface PolicySet {
  readonly rootNamespace: string;
  readonly trustDomain: string;
  /** Selector / namespace-scoped policies by metadata.namespace. */
  readonly byNamespace: ReadonlyMap<string, Bucket>;
  /** targetRef policies by metadata.namespace; only a waypoint honours them. */
  readonly targeted: ReadonlyMap<string, Bucket>;
  readonly peerAuthn: PeerAuthnIndex;
  readonly policyCount: number;
}

export interface PolicySetInput {
  authorizationPolicies: readonly AuthorizationPolicy[];
  peerAuthentications?: readonly PeerAuthentication[];
  /** Default "istio-system". */
  rootNamespace?: string;
  /** Default "cluster.local". */
  trustDomain?: string;
}

export const DEFAULT_ROOT_NAMESPACE = "istio-system";
export const DEFAULT_TRUST_DOMAIN = "cluster.local";
const DRY_RUN_ANNOTATION = "istio.io/dry-run";
/** The spellings Go's strconv.ParseBool reads as true, which is how istiod reads the annotation. */
const TRUE_VALUES = new Set(["1", "t", "T", "TRUE", "true", "True"]);

/**
 * istiod rewrites principals written for "cluster.local" (or the mesh trust domain) to the mesh
 * trust domain before building Envoy RBAC; principals in another trust domain stay as written.
 */
function trustDomainMigrator(trustDomain: string): (values: readonly string[]) => string[] {
  if (trustDomain === DEFAULT_TRUST_DOMAIN) return (vs) => [...vs];
  return (vs) =>
    vs.map((v) => {
      const parts = v.split("/");
      if (parts.length !== 5 || parts[0] === "*") return v;
      if (parts[0] !== DEFAULT_TRUST_DOMAIN && parts[0] !== trustDomain) return v;
      return [trustDomain, ...parts.slice(1)].join("/");
    });
}

const identity = (vs: readonly string[]): string[] => [...vs];

function compileForm(
  policy: AuthorizationPolicy,
  key: string,
  action: Action,
  mode: Mode,
  env: RuleEnv,
): CompiledForm {
  const shape = convertRules(policy.spec.rules, action, mode);
  const n = shape.dropped.length;
  return {
    rules: shape.rules.map((r) => ({
      index: r.index,
      test: rulePred(r, env),
      matchText: `rule ${r.index} matched (${describeRule(r)})`,
    })),
    dropped: shape.dropped,
    removed: shape.removed,
    droppedText: n === 0 ? "" : `rule${n === 1 ? "" : "s"} ${shape.dropped.join(", ")} of ${key}`,
  };
}

function targetRefsOf(policy: AuthorizationPolicy): PolicyTargetRef[] {
  const spec = policy.spec;
  if (spec.targetRefs && spec.targetRefs.length > 0) return spec.targetRefs;
  return spec.targetRef ? [spec.targetRef] : [];
}

export function compilePolicy(policy: AuthorizationPolicy, trustDomain: string): CompiledPolicy {
  const namespace = policy.metadata.namespace ?? "default";
  const action = policy.spec.action;
  const dryRun = TRUE_VALUES.has(policy.metadata.annotations?.[DRY_RUN_ANNOTATION] ?? "");
  const refs = targetRefsOf(policy);
  const scope: Scope =
    refs.length > 0
      ? { kind: "targetRefs", refs }
      : { kind: "workload", labels: Object.entries(policy.spec.selector?.matchLabels ?? {}) };
  const l7Env: RuleEnv = { policyNamespace: namespace, migratePrincipals: trustDomainMigrator(trustDomain) };
  // ztunnel gets principals exactly as written.
  const l4Env: RuleEnv = { policyNamespace: namespace, migratePrincipals: identity };
  const sentToZtunnel = refs.length === 0 && (action === "ALLOW" || action === "DENY");
  const key = `${namespace}/${policy.metadata.name}`;
  return {
    key,
    namespace,
    action,
    dryRun,
    scope,
    http: compileForm(policy, key, action, "http", l7Env),
    tcp: compileForm(policy, key, action, "tcp", l7Env),
    l4: sentToZtunnel ? compileForm(policy, key, action, "l4", l4Env) : null,
  };
}

function bucketOf(policies: CompiledPolicy[]): Bucket {
  // Envoy reports the first matching policy in name order; keep that order for stable reasons.
  const sorted = [...policies].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const enforced = sorted.filter((p) => !p.dryRun);
  return {
    deny: enforced.filter((p) => p.action === "DENY"),
    allow: enforced.filter((p) => p.action === "ALLOW"),
    audit: enforced.filter((p) => p.action === "AUDIT"),
    custom: enforced.filter((p) => p.action === "CUSTOM"),
    dryRun: sorted.filter((p) => p.dryRun),
  };
}

export function compilePolicySet(input: PolicySetInput): PolicySet {
  const rootNamespace = input.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const trustDomain = input.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const byNs = new Map<string, CompiledPolicy[]>();
  const targetedByNs = new Map<string, CompiledPolicy[]>();
  for (const policy of input.authorizationPolicies) {
    const compiled = compilePolicy(policy, trustDomain);
    const index = compiled.scope.kind === "targetRefs" ? targetedByNs : byNs;
    const list = index.get(compiled.namespace) ?? [];
    list.push(compiled);
    index.set(compiled.namespace, list);
  }
  const toBuckets = (m: Map<string, CompiledPolicy[]>): Map<string, Bucket> =>
    new Map([...m].map(([ns, ps]) => [ns, bucketOf(ps)]));
  return {
    rootNamespace,
    trustDomain,
    byNamespace: toBuckets(byNs),
    targeted: toBuckets(targetedByNs),
    peerAuthn: compilePeerAuthentications(input.peerAuthentications ?? [], rootNamespace),
    policyCount: input.authorizationPolicies.length,
  };
}
