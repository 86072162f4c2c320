// Rule shapes → predicates over an EvalContext. Each field becomes a closure holding its pre-split
// matchers, so a decision only walks closures; request values are derived once, in EvalContext.
import type { Condition, Operation, Source } from "../resources/security.js";
import type { EvalContext } from "./context.js";
import type { RuleShape } from "./l4.js";
import { cidrMatcher, portSet, StringMatcher } from "./match.js";
import { pathMatcher } from "./path.js";

export type Pred = (c: EvalContext) => boolean;

export const ALWAYS: Pred = () => true;
export const NEVER: Pred = () => false;

export function and(ps: readonly Pred[]): Pred {
  if (ps.length === 0) return ALWAYS;
  if (ps.length === 1) return ps[0] ?? ALWAYS;
  if (ps.length === 2) {
    const [a = ALWAYS, b = ALWAYS] = ps;
    return (c) => a(c) && b(c);
  }
  return (c) => {
    for (const p of ps) if (!p(c)) return false;
    return true;
  };
}

export function or(ps: readonly Pred[]): Pred {
  if (ps.length === 0) return NEVER;
  if (ps.length === 1) return ps[0] ?? NEVER;
  return (c) => {
    for (const p of ps) if (p(c)) return true;
    return false;
  };
}

const not =
  (p: Pred): Pred =>
  (c) =>
    !p(c);

/** What compiling a policy's rules needs to know besides the rules. */
export interface RuleEnv {
  /** The policy's namespace: the default for short serviceAccounts entries. */
  policyNamespace: string;
  /** Rewrites principals written for "cluster.local" to the mesh trust domain (L7 only, as istiod does). */
  migratePrincipals: (values: readonly string[]) => string[];
}

/** positive: some value matches; negative: none matches; an empty list is as good as absent. */
function pair(
  out: Pred[],
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  build: (vs: readonly string[]) => Pred,
): void {
  if (values !== undefined && values.length > 0) out.push(build(values));
  if (notValues !== undefined && notValues.length > 0) out.push(not(build(notValues)));
}

// A plaintext peer has no identity: every identity matcher fails, so negative ones succeed.
function principalPred(values: readonly string[]): Pred {
  const m = new StringMatcher(values);
  return (c) => c.principal !== null && m.matches(c.principal);
}

function namespacePred(values: readonly string[]): Pred {
  const m = new StringMatcher(values);
  return (c) => {
    const ns = c.identityNamespace();
    return ns !== null && m.matches(ns);
  };
}

function serviceAccountPred(values: readonly string[], policyNamespace: string): Pred {
  const wanted = values.map((v) => {
    const slash = v.indexOf("/");
    return slash >= 0 ? `${v.slice(0, slash)}/${v.slice(slash + 1)}` : `${policyNamespace}/${v}`;
  });
  const set = new Set(wanted);
  return (c) => {
    const id = c.identity();
    return id !== null && set.has(id);
  };
}

function ipPred(values: readonly string[], which: "source" | "destination"): Pred {
  const m = cidrMatcher(values);
  return which === "source" ? (c) => m.contains(c.sourceIp()) : (c) => m.contains(c.destinationIp());
}

function portPred(values: readonly string[]): Pred {
  const set = portSet(values);
  return (c) => set.has(c.port);
}

/** One side (issuer or subject) of a request principal pattern; "any" is Istio's ".+". */
type Side = { kind: "any" } | { kind: "exact" | "prefix" | "suffix"; value: string };

function sideMatches(s: Side, v: string): boolean {
  switch (s.kind) {
    case "any":
      return v.length > 0;
    case "exact":
      return v === s.value;
    case "prefix":
      return v.startsWith(s.value);
    case "suffix":
      return v.endsWith(s.value);
  }
}

/** Istio's "iss/sub" split: at the last '/', since issuers are often URLs. */
export function requestPrincipalPattern(value: string): { iss: Side; sub: Side } {
  const idx = value.lastIndexOf("/");
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : "";
  if (value === "*") return { iss: { kind: "any" }, sub: { kind: "any" } };
  if (value.startsWith("*")) {
    if (!found) return { iss: { kind: "any" }, sub: { kind: "suffix", value: value.slice(1) } };
    return {
      iss: iss === "*" ? { kind: "any" } : { kind: "suffix", value: iss.slice(1) },
      sub: { kind: "exact", value: sub },
    };
  }
  if (value.endsWith("*")) {
    if (!found) return { iss: { kind: "prefix", value: value.slice(0, -1) }, sub: { kind: "any" } };
    return {
      iss: { kind: "exact", value: iss },
      sub: sub === "*" ? { kind: "any" } : { kind: "prefix", value: sub.slice(0, -1) },
    };
  }
  return { iss: { kind: "exact", value: iss }, sub: { kind: "exact", value: sub } };
}

function requestPrincipalPred(values: readonly string[]): Pred {
  const patterns = values.map(requestPrincipalPattern);
  return (c) => {
    const jwt = c.jwt;
    if (jwt === null) return false;
    for (const p of patterns) if (sideMatches(p.iss, jwt.iss) && sideMatches(p.sub, jwt.sub)) return true;
    return false;
  };
}

/** Envoy's jwt_authn always presents these claims as lists split on spaces. */
const SPACE_DELIMITED = new Set(["scope", "permission"]);

/** The names inside request.auth.claims[a][b]...; nested claims walk into objects. */
export function claimPath(key: string): string[] {
  return [...key.slice("request.auth.claims".length).matchAll(/\[([^\][]+)\]/g)].map((m) => m[1] ?? "");
}

function claimPred(path: readonly string[], values: readonly string[]): Pred {
  const m = new StringMatcher(values);
  const split = path.length === 1 && SPACE_DELIMITED.has(path[0] ?? "");
  return (c) => {
    if (c.jwt === null) return false;
    let v: unknown = c.jwt.claims;
    for (const seg of path) {
      if (typeof v !== "object" || v === null || Array.isArray(v) || !Object.hasOwn(v, seg)) return false;
      v = (v as Record<string, unknown>)[seg];
    }
    if (typeof v === "string") {
      if (!split) return m.matches(v);
      for (const part of v.split(" ")) if (part !== "" && m.matches(part)) return true;
      return false;
    }
    // A list claim matches when any string element does.
    if (Array.isArray(v)) for (const e of v) if (typeof e === "string" && m.matches(e)) return true;
    return false;
  };
}

function headerPred(name: string, values: readonly string[]): Pred {
  // "*" is Envoy's present_match: the header exists, whatever its value.
  const presence = values.includes("*");
  const m = new StringMatcher(values.filter((v) => v !== "*"));
  return (c) => {
    const h = c.header(name);
    return h !== undefined && (presence || m.matches(h));
  };
}

export function sourcePred(s: Source, env: RuleEnv): Pred {
  const ps: Pred[] = [];
  pair(ps, s.principals, s.notPrincipals, (vs) => principalPred(env.migratePrincipals(vs)));
  pair(ps, s.namespaces, s.notNamespaces, namespacePred);
  pair(ps, s.serviceAccounts, s.notServiceAccounts, (vs) => serviceAccountPred(vs, env.policyNamespace));
  pair(ps, s.ipBlocks, s.notIpBlocks, (vs) => ipPred(vs, "source"));
  // No X-Forwarded-For or proxy protocol in this model: the remote address is the peer address.
  pair(ps, s.remoteIpBlocks, s.notRemoteIpBlocks, (vs) => ipPred(vs, "source"));
  pair(ps, s.requestPrincipals, s.notRequestPrincipals, requestPrincipalPred);
  return and(ps);
}

export function operationPred(o: Operation): Pred {
  const ps: Pred[] = [];
  pair(ps, o.ports, o.notPorts, portPred);
  pair(ps, o.methods, o.notMethods, (vs) => {
    const m = new StringMatcher(vs);
    return (c) => m.matches(c.method);
  });
  pair(ps, o.hosts, o.notHosts, (vs) => {
    const m = new StringMatcher(vs, true);
    return (c) => m.matches(c.host());
  });
  pair(ps, o.paths, o.notPaths, (vs) => {
    const m = pathMatcher(vs);
    return (c) => {
      const p = c.path();
      return p !== null && m.matches(p);
    };
  });
  return and(ps);
}

/** The predicate for one value list of a `when` key. */
function conditionValuesPred(key: string, values: readonly string[], env: RuleEnv): Pred {
  switch (key) {
    case "source.ip":
    case "remote.ip":
      return ipPred(values, "source");
    case "destination.ip":
      return ipPred(values, "destination");
    case "destination.port":
      return portPred(values);
    case "source.namespace":
      return namespacePred(values);
    case "source.principal":
      return principalPred(env.migratePrincipals(values));
    case "source.serviceAccount":
      return serviceAccountPred(values, env.policyNamespace);
    case "request.auth.principal":
      return requestPrincipalPred(values);
    case "request.auth.audiences":
      return claimPred(["aud"], values);
    case "request.auth.presenter":
      return claimPred(["azp"], values);
    case "connection.sni":
      // The model carries no SNI (HBONE has none): no value can match it.
      return NEVER;
  }
  if (key.startsWith("request.headers[") && key.endsWith("]")) {
    return headerPred(key.slice("request.headers[".length, -1).toLowerCase(), values);
  }
  if (key.startsWith("request.auth.claims[")) return claimPred(claimPath(key), values);
  // experimental.envoy.filters.* reads Envoy filter metadata, which this model does not have.
  return NEVER;
}

export function conditionPred(cond: Condition, env: RuleEnv): Pred {
  const ps: Pred[] = [];
  pair(ps, cond.values, cond.notValues, (vs) => conditionValuesPred(cond.key, vs, env));
  return and(ps);
}

/** A rule: at least one source (if any listed), one operation (if any), and every condition. */
export function rulePred(shape: RuleShape, env: RuleEnv): Pred {
  const clauses: Pred[] = [];
  if (shape.from !== null) clauses.push(or(shape.from.map((s) => (s === null ? NEVER : sourcePred(s, env)))));
  if (shape.to !== null) clauses.push(or(shape.to.map((o) => (o === null ? NEVER : operationPred(o)))));
  for (const w of shape.when) clauses.push(w === null ? NEVER : conditionPred(w, env));
  return and(clauses);
}
