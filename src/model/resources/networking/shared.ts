// Pieces the networking.istio.io kinds share: Istio's host-name rules, exportTo, StringMatch,
// destinations, percentages, header operations and Istio's duration limits.
import { z } from "zod";
import { duration, durationMs, isIpAddress, re2Problem } from "../common.js";

// Istio's DNS labels accept upper case (Kubernetes' do not).
const ISTIO_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

export function isIstioDnsLabel(s: string): boolean {
  return s.length <= 63 && ISTIO_LABEL.test(s);
}

function dnsLabelsProblem(domain: string): string | undefined {
  const parts = domain.split(".");
  const tld = parts[parts.length - 1] ?? "";
  if (/^\d+$/.test(tld))
    return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (const [i, label] of parts.entries()) {
    if (i === parts.length - 1 && label === "") return undefined; // trailing dot: "istio.io."
    if (!isIstioDnsLabel(label)) return `domain name "${domain}" invalid (label "${label}" invalid)`;
  }
  return undefined;
}

function preconditionProblem(name: string): string | undefined {
  if (name.length > 255) return `domain name "${name.slice(0, 40)}…" too long (max 255)`;
  if (name.length === 0) return "empty domain name not allowed";
  return undefined;
}

/** A fully-qualified name (no wildcard), as Istio checks DNS-resolved hosts. */
export function fqdnProblem(name: string): string | undefined {
  return preconditionProblem(name) ?? dnsLabelsProblem(name);
}

/** A host that may start with a wildcard label ("*", "*.example.com", "*-foo.example.com"). */
export function wildcardHostProblem(host: string): string | undefined {
  const pre = preconditionProblem(host);
  if (pre) return pre;
  const dot = host.indexOf(".");
  const first = dot < 0 ? host : host.slice(0, dot);
  if (first.length > 63 || !WILDCARD_LABEL.test(first))
    return `domain name "${host}" invalid (label "${first}" invalid)`;
  return dot < 0 ? undefined : dnsLabelsProblem(host.slice(dot + 1));
}

/** Istio's host overlap test: exact equality, or one wildcard covering the other. */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = a.startsWith("*");
  const bw = b.startsWith("*");
  if (aw && bw)
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** Whether host `a` is covered by host `b`. */
export function hostSubsetOf(a: string, b: string): boolean {
  const aw = a.startsWith("*");
  const bw = b.startsWith("*");
  if (aw && bw) return a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (aw) return false;
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** A name Istio treats as a DNS label (port names, subset names). */
export function istioLabel(what: string) {
  return z
    .string()
    .refine(isIstioDnsLabel, { message: `${what} must be a DNS label (alphanumerics and '-', at most 63)` });
}

export const istioPort = z
  .number({ error: "expected a port number (integer 1-65535)" })
  .int({ error: "expected a port number (integer 1-65535)" })
  .min(1, { error: "port must be between 1-65535" })
  .max(65535, { error: "port must be between 1-65535" });

export const uint32 = z
  .number()
  .int({ error: "expected an integer" })
  .min(0, { error: "expected a non-negative integer" })
  .max(4294967295);

/** Istio's durations: at least 1ms, millisecond precision. */
export const istioDuration = duration.superRefine((s, ctx) => {
  if (!duration.safeParse(s).success) return; // the form is already reported
  const ms = durationMs(s);
  if (ms < 1) ctx.addIssue({ code: "custom", message: `duration "${s}" must be at least 1ms` });
  else if (!Number.isInteger(Math.round(ms * 1e6) / 1e6)) {
    ctx.addIssue({ code: "custom", message: `duration "${s}": only millisecond precision is supported` });
  }
});

/** exportTo: ".", "*", a namespace; "~" only for ServiceEntry; no repeats; "*" and "~" alone. */
export function exportTo(allowNone: boolean) {
  return z.array(z.string()).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((e, i) => {
      if (seen.has(e))
        ctx.addIssue({ code: "custom", message: `duplicate exportTo entry "${e}"`, path: [i] });
      seen.add(e);
      const ok =
        e === "." ||
        e === "*" ||
        (allowNone && e === "~") ||
        (e.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(e));
      if (!ok) {
        ctx.addIssue({
          code: "custom",
          message: `exportTo entry "${e}" must be ".", "*"${allowNone ? ', "~"' : ""} or a namespace name`,
          path: [i],
        });
      }
    });
    if (list.length > 1 && seen.has("*"))
      ctx.addIssue({ code: "custom", message: 'exportTo "*" cannot be combined with other entries' });
    if (list.length > 1 && seen.has("~"))
      ctx.addIssue({
        code: "custom",
        message: 'exportTo "~" (no one) cannot be combined with other entries',
      });
  });
}

export type StringMatchRule = "exactlyOne" | "atMostOne";

/**
 * Istio's StringMatch: one of exact, prefix or regex. uri allows an empty prefix; other fields
 * do not; header maps may use `{}` to test presence only.
 */
export function stringMatch(
  rule: StringMatchRule,
  options: { emptyPrefix?: boolean; starRegex?: boolean } = {},
) {
  return z
    .strictObject({
      exact: z.string().optional(),
      prefix: z.string().optional(),
      regex: z.string().optional(),
    })
    .superRefine((m, ctx) => {
      const set = (["exact", "prefix", "regex"] as const).filter((k) => m[k] !== undefined);
      if (set.length > 1) {
        ctx.addIssue({
          code: "custom",
          message: `only one of exact, prefix or regex may be set (found ${set.join(", ")})`,
        });
      } else if (set.length === 0 && rule === "exactlyOne") {
        ctx.addIssue({ code: "custom", message: "expected exactly one of exact, prefix or regex" });
      }
      if (m.prefix === "" && !options.emptyPrefix)
        ctx.addIssue({ code: "custom", message: "prefix must not be empty", path: ["prefix"] });
      if (m.regex !== undefined && !(options.starRegex && m.regex === "*")) {
        const problem = m.regex === "" ? "regex must not be empty" : re2Problem(m.regex);
        if (problem) ctx.addIssue({ code: "custom", message: `"${m.regex}": ${problem}`, path: ["regex"] });
      }
    });
}
export type StringMatch = z.infer<ReturnType<typeof stringMatch>>;

export const portSelector = z.strictObject({ number: istioPort });

export const destination = z
  .strictObject({
    host: z.string({ error: "expected a host name" }),
    subset: istioLabel("subset name").optional(),
    port: portSelector.optional(),
  })
  .superRefine((d, ctx) => {
    const problem = d.host === "*" ? 'destination host "*" is not allowed' : wildcardHostProblem(d.host);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["host"] });
  });
export type Destination = z.infer<typeof destination>;

/** A percentage: 0, or 0.0001 to 100. */
export const percent = z.strictObject({ value: z.number() }).superRefine((p, ctx) => {
  if (p.value < 0 || p.value > 100 || (p.value > 0 && p.value < 0.0001)) {
    ctx.addIssue({
      code: "custom",
      message: `percentage ${p.value} must be 0 or in 0.0001-100`,
      path: ["value"],
    });
  }
});

// eslint-disable-next-line no-control-regex
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const isAuthority = (h: string): boolean => h.toLowerCase() === ":authority" || h.toLowerCase() === "host";

function headerOperations(side: "request" | "response") {
  return z
    .strictObject({
      set: z.record(z.string(), z.string()).optional(),
      add: z.record(z.string(), z.string()).optional(),
      remove: z.array(z.string()).optional(),
    })
    .superRefine((ops, ctx) => {
      const nameProblem = (name: string, op: "set" | "add" | "remove"): string | undefined => {
        if (name === "") return "header name cannot be empty";
        // Requests may rewrite the authority through set/add; nothing else may touch pseudo-headers or Host.
        if (side === "request" && op !== "remove" && isAuthority(name)) return undefined;
        if (name.toLowerCase() === "host") return `header "${name}" cannot be modified here`;
        if (name.startsWith(":")) return `header "${name}" cannot have a ':' prefix`;
        return undefined;
      };
      for (const op of ["set", "add"] as const) {
        for (const [name, value] of Object.entries(ops[op] ?? {})) {
          const problem = nameProblem(name, op);
          if (problem) ctx.addIssue({ code: "custom", message: problem, path: [op, name] });
          if (!HEADER_VALUE.test(value))
            ctx.addIssue({
              code: "custom",
              message: `header "${name}" value contains control characters`,
              path: [op, name],
            });
        }
      }
      ops.remove?.forEach((name, i) => {
        const problem = nameProblem(name, "remove");
        if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["remove", i] });
      });
    });
}

export const headers = z.strictObject({
  request: headerOperations("request").optional(),
  response: headerOperations("response").optional(),
});
export type Headers = z.infer<typeof headers>;

/** The authority of requests through a route, from wherever it is rewritten (at most one place). */
export function authorityRewrites(h: Headers | undefined): string[] {
  const out: string[] = [];
  for (const op of [h?.request?.set, h?.request?.add]) {
    for (const [k, v] of Object.entries(op ?? {})) if (isAuthority(k)) out.push(v);
  }
  return out;
}

/** Gateway names in VirtualServices: "namespace/name", "mesh", or a legacy FQDN. */
export function gatewayNameProblem(name: string): string | undefined {
  const slash = name.indexOf("/");
  if (slash < 0) return fqdnProblem(name);
  const ns = name.slice(0, slash);
  const gw = name.slice(slash + 1);
  if (ns === "" || gw === "") return "gateway namespace and name cannot be empty";
  if (!isIstioDnsLabel(ns)) return `invalid gateway namespace "${ns}"`;
  if (!isIstioDnsLabel(gw)) return `invalid gateway name "${gw}"`;
  return undefined;
}

export const gatewayNames = z.array(z.string()).superRefine((names, ctx) => {
  names.forEach((n, i) => {
    const problem = gatewayNameProblem(n);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: [i] });
  });
});

/** A host that may also be an IP address (VirtualService hosts, SNI hosts). */
export function hostOrIpProblem(host: string): string | undefined {
  const problem = wildcardHostProblem(host);
  return problem && !isIpAddress(host) ? problem : undefined;
}
