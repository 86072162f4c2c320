// One decision: peer authentication, then CUSTOM (reported), DENY, ALLOW — in Istio's order —
// with AUDIT and dry-run policies evaluated for the record only. Pure and exception-free.
import type { PolicyTargetRef } from "../resources/common.js";
import type { Bucket, CompiledForm, CompiledPolicy, CompiledRule, PolicySet } from "./compile.js";
import { EvalContext } from "./context.js";
import type { Mode } from "./l4.js";
import { effectiveMtls, type MtlsVerdict } from "./peer-authn.js";
import type { AuthzRequest, Decision, Layer } from "./types.js";

const GATEWAY_API = "gateway.networking.k8s.io";
const WAYPOINT_CLASS = "istio-waypoint";

function formOf(p: CompiledPolicy, mode: Mode): CompiledForm | null {
  return mode === "http" ? p.http : mode === "tcp" ? p.tcp : p.l4;
}

function firstMatch(form: CompiledForm, ctx: EvalContext): CompiledRule | null {
  for (const r of form.rules) if (r.test(ctx)) return r;
  return null;
}

function refMatches(
  ref: PolicyTargetRef,
  p: CompiledPolicy,
  req: AuthzRequest,
  rootNamespace: string,
): boolean {
  const group = ref.group === undefined || ref.group === "" ? "core" : ref.group;
  // Attachment never crosses namespaces: the reference names the policy's own namespace.
  const sameNamespace = ref.namespace === undefined || ref.namespace === "" || ref.namespace === p.namespace;
  const wp = req.waypoint;
  if (wp === undefined) return false;
  switch (ref.kind) {
    case "Gateway":
      return group === GATEWAY_API && sameNamespace && ref.name === wp.name && wp.namespace === p.namespace;
    case "GatewayClass":
      return group === GATEWAY_API && ref.name === WAYPOINT_CLASS && p.namespace === rootNamespace;
    case "Service":
    case "ServiceEntry": {
      const svc = req.destination.service;
      const wantGroup = ref.kind === "Service" ? "core" : "networking.istio.io";
      return (
        group === wantGroup &&
        sameNamespace &&
        svc !== undefined &&
        svc.name === ref.name &&
        svc.namespace === p.namespace
      );
    }
    default:
      return false;
  }
}

function applies(p: CompiledPolicy, req: AuthzRequest, rootNamespace: string): boolean {
  const scope = p.scope;
  if (scope.kind === "workload") {
    const labels = req.destination.workloadLabels;
    for (const [k, v] of scope.labels) if (labels[k] !== v) return false;
    return true;
  }
  for (const ref of scope.refs) if (refMatches(ref, p, req, rootNamespace)) return true;
  return false;
}

/**
 * The namespaces whose policies can apply, root namespace first (Istio evaluates root DENY
 * policies before the others). A real waypoint honours only targetRef policies; ztunnel and a
 * sidecar-style L7 evaluation honour only selector / namespace-scoped ones.
 */
function candidateBuckets(set: PolicySet, req: AuthzRequest, layer: Layer): Bucket[] {
  const out: Bucket[] = [];
  const add = (m: ReadonlyMap<string, Bucket>, ns: string | undefined): void => {
    const b = ns === undefined ? undefined : m.get(ns);
    if (b !== undefined && !out.includes(b)) out.push(b);
  };
  if (layer === "L7" && req.waypoint !== undefined) {
    add(set.targeted, set.rootNamespace);
    add(set.targeted, req.waypoint.namespace);
    add(set.targeted, req.destination.service?.namespace);
  } else {
    add(set.byNamespace, set.rootNamespace);
    add(set.byNamespace, req.destination.namespace);
  }
  return out;
}

function target(req: AuthzRequest, layer: Layer): string {
  if (layer === "L7" && req.waypoint !== undefined)
    return `waypoint ${req.waypoint.namespace}/${req.waypoint.name}`;
  const d = req.destination;
  const name = d.workloadLabels.app ?? d.workloadLabels["app.kubernetes.io/name"] ?? d.serviceAccount;
  return `workload ${d.namespace}/${name}`;
}

/** Why ALLOW policies may have had nothing left to match with at this layer. */
function droppedNote(dropped: string, mode: Mode): string {
  if (dropped === "") return "";
  const why =
    mode === "l4"
      ? "the node proxy cannot see HTTP attributes (methods, paths, hosts, request principals, headers...), so it drops ALLOW rules that use them"
      : "this connection is not HTTP, so ALLOW rules that need HTTP attributes are dropped";
  return `; ${why}: ${dropped}`;
}

const LEVEL_TEXT: Record<MtlsVerdict["level"], string> = {
  default: "",
  mesh: " (mesh-wide)",
  namespace: " (namespace-wide)",
  workload: "",
  port: " (port level)",
};

/** Refusals that happen before any AuthorizationPolicy runs; null when the request gets that far. */
function refusal(
  set: PolicySet,
  req: AuthzRequest,
  ctx: EvalContext,
  mode: Mode,
): [string | null, string] | null {
  const dest = req.destination;
  if (ctx.principal === null) {
    const mtls = effectiveMtls(set.peerAuthn, dest.namespace, dest.workloadLabels, dest.port);
    if (mtls.mode === "STRICT") {
      const by = mtls.policy ?? "(default)";
      return [
        mtls.policy,
        `denied by PeerAuthentication ${by}: mTLS mode STRICT${LEVEL_TEXT[mtls.level]} rejects a plaintext peer on port ${dest.port}`,
      ];
    }
  }
  if (mode === "http" && ctx.path() === null) {
    return [
      null,
      "denied: the path contains an encoded NUL (%00), which the proxy rejects with 400 before any policy runs",
    ];
  }
  return null;
}

export function authorize(set: PolicySet, req: AuthzRequest, layer: Layer): Decision {
  const ctx = new EvalContext(req);
  const mode: Mode = layer === "L4" ? "l4" : req.http !== null ? "http" : "tcp";
  const out: Decision = { decision: "DENY", policy: null, reason: "", audit: [], dryRun: [], custom: [] };
  const decide = (decision: "ALLOW" | "DENY", policy: string | null, reason: string): Decision => {
    out.decision = decision;
    out.policy = policy;
    out.reason = reason;
    return out;
  };

  const refused = refusal(set, req, ctx, mode);
  if (refused !== null) return decide("DENY", refused[0], refused[1]);

  const buckets = candidateBuckets(set, req, layer);
  const root = set.rootNamespace;

  // Recorded, never enforced. istiod sends neither AUDIT nor CUSTOM policies to ztunnel.
  for (const b of buckets) {
    for (const p of b.dryRun) {
      const f = formOf(p, mode);
      if (f === null || !applies(p, req, root)) continue;
      out.dryRun.push({
        policy: p.key,
        action: p.action,
        matched: firstMatch(f, ctx) !== null,
        dryRun: true,
      });
    }
    if (mode === "l4") continue;
    for (const p of b.custom) if (applies(p, req, root) && matches(p, mode, ctx)) out.custom.push(p.key);
    for (const p of b.audit) if (applies(p, req, root) && matches(p, mode, ctx)) out.audit.push(p.key);
  }

  for (const b of buckets) {
    for (const p of b.deny) {
      const f = formOf(p, mode);
      if (f === null || !applies(p, req, root)) continue;
      const r = firstMatch(f, ctx);
      if (r !== null) return decide("DENY", p.key, `denied by DENY policy ${p.key}: ${r.matchText}`);
    }
  }

  // Reasons are built by appending (cheap rope strings in V8) rather than collecting and joining.
  let count = 0;
  let names = "";
  let dropped = "";
  for (const b of buckets) {
    for (const p of b.allow) {
      const f = formOf(p, mode);
      if (f === null || !applies(p, req, root)) continue;
      const r = firstMatch(f, ctx);
      if (r !== null) return decide("ALLOW", p.key, `allowed by ALLOW policy ${p.key}: ${r.matchText}`);
      count++;
      names = count === 1 ? p.key : `${names}, ${p.key}`;
      if (f.droppedText !== "") dropped = dropped === "" ? f.droppedText : `${dropped}; ${f.droppedText}`;
    }
  }
  if (count === 0) return decide("ALLOW", null, `allowed: no ALLOW policy applies to ${target(req, layer)}`);
  const applying = count === 1 ? "1 ALLOW policy applies" : `${count} ALLOW policies apply`;
  return decide(
    "DENY",
    null,
    `denied: no ALLOW policy matched (${applying}: ${names})${droppedNote(dropped, mode)}`,
  );
}

function matches(p: CompiledPolicy, mode: Mode, ctx: EvalContext): boolean {
  const f = formOf(p, mode);
  return f !== null && firstMatch(f, ctx) !== null;
}
