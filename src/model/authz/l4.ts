// What a rule becomes where HTTP is not visible, as a spec-to-spec conversion: at the node proxy
// (istiod's ambient conversion for ztunnel) and on a plain-TCP L7 filter chain (Envoy RBAC built
// "for TCP"). The two differ in which attributes survive and in what an emptied match means.
import type { Condition, Operation, Rule, Source } from "../resources/security.js";
import type { Action } from "./types.js";

/**
 * http: everything is visible. tcp: an L7 proxy evaluating a non-HTTP connection (a field that
 * needs HTTP is left out; an emptied source/operation matches anything). l4: the node proxy
 * (only identity, IP and port attributes exist; an emptied match never matches).
 */
export type Mode = "http" | "tcp" | "l4";

/** One rule after conversion. A null entry is a match with no fields left, which never matches. */
export interface RuleShape {
  /** Index of the rule in the policy as written. */
  index: number;
  from: (Source | null)[] | null;
  to: (Operation | null)[] | null;
  when: (Condition | null)[];
  /** Attribute names the conversion left out of this rule. */
  removed: string[];
}

export interface PolicyShape {
  rules: RuleShape[];
  /** Indexes of ALLOW rules left out entirely because they need attributes this layer lacks. */
  dropped: number[];
  /** Every attribute name left out, across rules. */
  removed: string[];
}

type Field<T> = keyof T & string;

const HTTP_ONLY_SOURCE: readonly Field<Source>[] = ["requestPrincipals", "notRequestPrincipals"];
const L7_SOURCE: readonly Field<Source>[] = [
  "requestPrincipals",
  "notRequestPrincipals",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
];
const HTTP_OPERATION: readonly Field<Operation>[] = [
  "hosts",
  "notHosts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
];

/** The `when` keys istiod passes to ztunnel; every other key is an L7 attribute there. */
export const L4_CONDITION_KEYS: ReadonlySet<string> = new Set([
  "source.ip",
  "source.namespace",
  "source.principal",
  "destination.ip",
  "destination.port",
]);

function isHttpOnlyKey(key: string): boolean {
  return key.startsWith("request.headers[") || key.startsWith("request.auth.");
}

function isSet(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}

/** Fields of `obj` from `names` that carry values (an empty list counts as absent, as in Istio). */
function present<T extends object>(obj: T, names: readonly Field<T>[]): string[] {
  return names.filter((n) => isSet(obj[n]));
}

function without<T extends object>(obj: T, names: readonly string[]): T {
  const out = { ...obj } as Record<string, unknown>;
  for (const n of names) delete out[n];
  return out as T;
}

function hasAnyValue(obj: object): boolean {
  return Object.values(obj).some(isSet);
}

export function convertRules(rules: readonly Rule[] | undefined, action: Action, mode: Mode): PolicyShape {
  const out: PolicyShape = { rules: [], dropped: [], removed: [] };
  (rules ?? []).forEach((rule, index) => {
    const shape = convertRule(rule, index, mode);
    if (shape.removed.length > 0 && action === "ALLOW") {
      // Istio omits the whole ALLOW rule rather than widen it.
      out.dropped.push(index);
    } else {
      out.rules.push(shape);
    }
    for (const r of shape.removed) if (!out.removed.includes(r)) out.removed.push(r);
  });
  return out;
}

function convertRule(rule: Rule, index: number, mode: Mode): RuleShape {
  const removed: string[] = [];
  const note = (names: readonly string[]): void => {
    for (const n of names) if (!removed.includes(n)) removed.push(n);
  };
  const from =
    rule.from?.map(({ source }) => {
      if (mode === "http") return source;
      const gone = present(source, mode === "l4" ? L7_SOURCE : HTTP_ONLY_SOURCE);
      note(gone);
      const kept = without(source, gone);
      return mode === "l4" && !hasAnyValue(kept) ? null : kept;
    }) ?? null;
  const to =
    rule.to?.map(({ operation }) => {
      if (mode === "http") return operation;
      const gone = present(operation, HTTP_OPERATION);
      note(gone);
      const kept = without(operation, gone);
      return mode === "l4" && !hasAnyValue(kept) ? null : kept;
    }) ?? null;
  const when: (Condition | null)[] = [];
  for (const c of rule.when ?? []) {
    if (mode === "l4" && !L4_CONDITION_KEYS.has(c.key)) {
      note([c.key]);
      when.push(null);
    } else if (mode === "tcp" && isHttpOnlyKey(c.key)) {
      note([c.key]);
    } else {
      when.push(c);
    }
  }
  return { index, from, to, when, removed };
}
