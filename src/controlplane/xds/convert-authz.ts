// AuthorizationPolicy and PeerAuthentication → istio.security.Authorization, as istiod's ambient
// conversion does for ztunnel (pilot/pkg/serviceregistry/kube/controller/ambient/{authorization,policies}.go).
import ipaddr from "ipaddr.js";
import type {
  Authorization,
  Clause,
  IpPrefix,
  Match,
  Rule,
  ServiceAccountMatch,
  StringMatch,
} from "../../api/xds-types.js";
import { convertRules } from "../../model/authz/l4.js";
import { compilePeerAuthentications, type PeerAuthnIndex } from "../../model/authz/peer-authn.js";
import type { AuthorizationPolicy, PeerAuthentication } from "../../model/resources/registry.js";
import type { Condition, MtlsMode } from "../../model/resources/security.js";

export const STATIC_STRICT_POLICY_NAME = "istio_converted_static_strict";
export const CONVERTED_PEER_AUTHN_PREFIX = "converted_peer_authentication_";
const DRY_RUN_ANNOTATION = "istio.io/dry-run";
const TRUE_VALUES = new Set(["1", "t", "T", "TRUE", "true", "True"]);

// ---------------------------------------------------------------------------------------------
// Value conversions (istiod's stringToMatch / stringToIP / stringToPort / stringToServiceAccountMatch)

export function stringMatches(values: readonly string[] | undefined): StringMatch[] {
  return (values ?? []).map((v) => {
    if (v === "*") return { presence: {} };
    if (v.startsWith("*")) return { suffix: v.slice(1) };
    if (v.endsWith("*")) return { prefix: v.slice(0, -1) };
    return { exact: v };
  });
}

export function ipPrefixes(values: readonly string[] | undefined): IpPrefix[] {
  const out: IpPrefix[] = [];
  for (const v of values ?? []) {
    try {
      if (v.includes("/")) {
        const [addr, bits] = ipaddr.parseCIDR(v);
        out.push({ address: Uint8Array.from(addr.toByteArray()), length: bits });
      } else {
        const addr = ipaddr.parse(v);
        out.push({ address: Uint8Array.from(addr.toByteArray()), length: addr.kind() === "ipv4" ? 32 : 128 });
      }
    } catch {
      // istiod skips values that do not parse
    }
  }
  return out;
}

export function ports(values: readonly string[] | undefined): number[] {
  return (values ?? []).filter((v) => /^\d+$/.test(v) && Number(v) <= 65535).map((v) => Number(v));
}

function serviceAccounts(
  values: readonly string[] | undefined,
  ruleNamespace: string,
): ServiceAccountMatch[] {
  return (values ?? []).map((v) => {
    const slash = v.indexOf("/");
    return slash >= 0
      ? { namespace: v.slice(0, slash), serviceAccount: v.slice(slash + 1) }
      : { namespace: ruleNamespace, serviceAccount: v };
  });
}

/** Drop empty lists so encoded matches stay minimal (proto3 encodes them identically either way). */
function compact(m: Match): Match {
  const out: Match = {};
  for (const [k, v] of Object.entries(m) as [keyof Match, Match[keyof Match]][]) {
    if (!Array.isArray(v) || v.length > 0) Object.assign(out, { [k]: v });
  }
  return out;
}

function whenMatch(c: Condition): Match {
  const pick = (key: string, values: string[] | undefined): string[] | undefined =>
    c.key === key ? values : undefined;
  return compact({
    namespaces: stringMatches(pick("source.namespace", c.values)),
    principals: stringMatches(pick("source.principal", c.values)),
    sourceIps: ipPrefixes(pick("source.ip", c.values)),
    destinationPorts: ports(pick("destination.port", c.values)),
    destinationIps: ipPrefixes(pick("destination.ip", c.values)),
    notNamespaces: stringMatches(pick("source.namespace", c.notValues)),
    notPrincipals: stringMatches(pick("source.principal", c.notValues)),
    notSourceIps: ipPrefixes(pick("source.ip", c.notValues)),
    notDestinationPorts: ports(pick("destination.port", c.notValues)),
    notDestinationIps: ipPrefixes(pick("destination.ip", c.notValues)),
  });
}

// ---------------------------------------------------------------------------------------------
// AuthorizationPolicy

export interface ConvertedPolicy {
  authorization: Authorization;
  /** Match labels for WORKLOAD_SELECTOR policies (empty: selects every workload of the namespace). */
  selector?: Readonly<Record<string, string>>;
  /** L7 attributes the conversion left out (istiod reports them in the policy status). */
  removed: string[];
}

/** One policy as ztunnel receives it, or undefined when istiod sends nothing (targetRefs, AUDIT, CUSTOM). */
export function convertAuthorizationPolicy(
  policy: AuthorizationPolicy,
  rootNamespace: string,
): ConvertedPolicy | undefined {
  const spec = policy.spec;
  if (spec.targetRef || (spec.targetRefs && spec.targetRefs.length > 0)) return undefined;
  if (spec.action !== "ALLOW" && spec.action !== "DENY") return undefined;
  const namespace = policy.metadata.namespace ?? "default";
  const scope = spec.selector ? "WORKLOAD_SELECTOR" : namespace === rootNamespace ? "GLOBAL" : "NAMESPACE";
  // l4.ts decides which rules survive and which attributes are stripped (istiod's handleRule);
  // here the surviving attributes are only reshaped into matches.
  const shape = convertRules(spec.rules, spec.action, "l4");
  const rules: Rule[] = shape.rules.map((r) => {
    const clauses: Clause[] = [];
    if (r.to && r.to.length > 0) {
      clauses.push({
        // An operation emptied by the conversion (null) becomes an empty Match, as istiod sends
        // it: ztunnel skips empty matches, so it never matches (a clause with no matches at all
        // would match everything in ztunnel).
        matches: r.to.map((op) =>
          op === null
            ? {}
            : compact({ destinationPorts: ports(op.ports), notDestinationPorts: ports(op.notPorts) }),
        ),
      });
    }
    if (r.from && r.from.length > 0) {
      clauses.push({
        matches: r.from.map((s) =>
          s === null
            ? {}
            : compact({
                sourceIps: ipPrefixes(s.ipBlocks),
                notSourceIps: ipPrefixes(s.notIpBlocks),
                namespaces: stringMatches(s.namespaces),
                notNamespaces: stringMatches(s.notNamespaces),
                serviceAccounts: serviceAccounts(s.serviceAccounts, namespace),
                notServiceAccounts: serviceAccounts(s.notServiceAccounts, namespace),
                principals: stringMatches(s.principals),
                notPrincipals: stringMatches(s.notPrincipals),
              }),
        ),
      });
    }
    for (const c of r.when) clauses.push({ matches: [c ? whenMatch(c) : {}] });
    return { clauses };
  });
  const authorization: Authorization = {
    name: policy.metadata.name,
    namespace,
    scope,
    action: spec.action,
    rules,
    dryRun: TRUE_VALUES.has(policy.metadata.annotations?.[DRY_RUN_ANNOTATION] ?? ""),
  };
  const out: ConvertedPolicy = { authorization, removed: shape.removed };
  if (spec.selector) out.selector = spec.selector.matchLabels ?? {};
  return out;
}

// ---------------------------------------------------------------------------------------------
// PeerAuthentication

const PRESENCE: StringMatch[] = [{ presence: {} }];

/** The DENY-without-identity policy istiod always sends once any PeerAuthentication exists. */
export function staticStrictPolicy(rootNamespace: string): Authorization {
  return {
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: "WORKLOAD_SELECTOR",
    action: "DENY",
    rules: [{ clauses: [{ matches: [{ notPrincipals: PRESENCE }] }] }],
    dryRun: false,
  };
}

type Compiled = NonNullable<PeerAuthnIndex["mesh"]>;

const isStrict = (m: MtlsMode | undefined): boolean => m === "STRICT";
const isUnset = (m: MtlsMode | undefined): boolean => m === undefined || m === "UNSET";
const isLoose = (m: MtlsMode | undefined): boolean => m === "PERMISSIVE" || m === "DISABLE";

function paName(c: Compiled): string {
  return c.key.slice(c.key.indexOf("/") + 1);
}

export function convertedPeerAuthnName(c: Compiled): string {
  return `${c.namespace}/${CONVERTED_PEER_AUTHN_PREFIX}${paName(c)}`;
}

/** istiod's convertPeerAuthentication: a workload PeerAuthentication with port-level modes → a DENY policy. */
function convertPeerAuthentication(
  c: Compiled,
  nsCfg: Compiled | undefined,
  rootCfg: Compiled | null,
  rootNamespace: string,
): Authorization | undefined {
  if (c.namespace === rootNamespace || c.labels.length === 0 || c.ports.size === 0) return undefined;
  const mode = c.mode;
  const clauses: Clause[] = [];
  const rules: Rule[] = [];
  if (isStrict(mode)) clauses.push({ matches: [{ notPrincipals: PRESENCE }] });
  let foundNonStrict = false;
  for (const [port, portMode] of [...c.ports].sort((a, b) => a[0] - b[0])) {
    if (isStrict(portMode)) {
      // Go's precedence in istiod: A || (B && C) || D.
      const parentStrict =
        isStrict(mode) ||
        (isUnset(mode) && nsCfg !== undefined && isStrict(nsCfg.mode)) ||
        ((nsCfg === undefined || isUnset(nsCfg.mode)) && rootCfg !== null && isStrict(rootCfg.mode));
      if (parentStrict) continue;
      rules.push({ clauses: [{ matches: [{ notPrincipals: PRESENCE, destinationPorts: [port] }] }] });
    } else if (isLoose(portMode)) {
      if (isLoose(mode)) continue;
      if (
        isUnset(mode) &&
        ((nsCfg !== undefined && !isStrict(nsCfg.mode)) ||
          (nsCfg === undefined && rootCfg !== null && !isStrict(rootCfg.mode)) ||
          (nsCfg === undefined && rootCfg === null))
      ) {
        continue;
      }
      foundNonStrict = true;
      clauses.push({ matches: [{ notDestinationPorts: [port] }] });
    }
  }
  if (isStrict(mode) && !foundNonStrict) return undefined;
  if (clauses.length === 0 && rules.length === 0) return undefined;
  const mergeStrict =
    (rootCfg !== null &&
      isStrict(rootCfg.mode) &&
      (nsCfg === undefined || isUnset(nsCfg.mode) || isStrict(nsCfg.mode))) ||
    (nsCfg !== undefined && isStrict(nsCfg.mode));
  if (mergeStrict && foundNonStrict) clauses.push({ matches: [{ notPrincipals: PRESENCE }] });
  if (clauses.length > 0) rules.push({ clauses });
  return {
    name: `${CONVERTED_PEER_AUTHN_PREFIX}${paName(c)}`,
    namespace: c.namespace,
    scope: "WORKLOAD_SELECTOR",
    action: "DENY",
    rules,
    dryRun: false,
  };
}

function selects(
  labels: readonly (readonly [string, string])[],
  target: Readonly<Record<string, string>>,
): boolean {
  return labels.every(([k, v]) => target[k] === v);
}

/** Everything the PeerAuthentications contribute: sent policies and, per workload, the names it references. */
export class PeerAuthnConversion {
  readonly policies = new Map<string, Authorization>();
  private readonly index: PeerAuthnIndex;

  constructor(
    pas: readonly PeerAuthentication[],
    private readonly rootNamespace: string,
  ) {
    this.index = compilePeerAuthentications(pas, rootNamespace);
    if (pas.length > 0)
      this.policies.set(`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`, staticStrictPolicy(rootNamespace));
    for (const list of this.index.workloads.values()) {
      for (const c of list) {
        const converted = convertPeerAuthentication(
          c,
          this.index.namespaces.get(c.namespace),
          this.index.mesh,
          rootNamespace,
        );
        if (converted) this.policies.set(`${c.namespace}/${converted.name ?? ""}`, converted);
      }
    }
  }

  /** istiod's convertedSelectorPeerAuthentications: the PeerAuthentication-derived names a workload lists. */
  workloadPolicyNames(namespace: string, labels: Readonly<Record<string, string>>): string[] {
    const mesh = this.index.mesh;
    const ns = this.index.namespaces.get(namespace);
    const workload = this.index.workloads.get(namespace)?.find((c) => selects(c.labels, labels));
    let strict = mesh ? isStrict(mesh.mode) : false;
    if (ns && !isUnset(ns.mode)) strict = isStrict(ns.mode);
    let portKey = "";
    if (workload) {
      if (isStrict(workload.mode)) strict = true;
      if (isLoose(workload.mode)) strict = false;
      if (workload.ports.size > 0) {
        const modes = [...workload.ports.values()];
        if (isStrict(workload.mode)) {
          if (modes.some(isLoose)) {
            portKey = convertedPeerAuthnName(workload);
            strict = false;
          }
        } else if (isLoose(workload.mode)) {
          if (modes.some(isStrict)) portKey = convertedPeerAuthnName(workload);
        } else if (strict) {
          if (modes.some((m) => m === "PERMISSIVE")) {
            portKey = convertedPeerAuthnName(workload);
            strict = false;
          }
        } else {
          strict = false;
          if (modes.some(isStrict)) portKey = convertedPeerAuthnName(workload);
        }
      }
    }
    const out = new Set<string>();
    if (strict) out.add(`${this.rootNamespace}/${STATIC_STRICT_POLICY_NAME}`);
    if (portKey) out.add(portKey);
    return [...out].sort();
  }
}
