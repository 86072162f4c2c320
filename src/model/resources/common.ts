// Schema building blocks shared by every resource kind: Kubernetes object metadata, labels and
// selectors, names, ports, IPs/CIDRs, durations. Pure: no I/O.
import ipaddr from "ipaddr.js";
import { z } from "zod";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** A Kubernetes label key: optional DNS-subdomain prefix and '/', then a name of at most 63 chars. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) {
    return `label key "${key}": prefix must be a DNS subdomain (lowercase alphanumerics, '-', '.')`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `label key "${key}": name must be 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  }
  return undefined;
}

export function labelValueProblem(key: string, value: string): string | undefined {
  if (value.length > 63 || !LABEL_VALUE.test(value)) {
    return `label "${key}" value "${value}": must be at most 63 characters of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  }
  return undefined;
}

export const dnsLabel = z.string().refine(isDns1123Label, {
  message: "expected a DNS-1123 label (lowercase alphanumerics and '-', at most 63)",
});

export const dnsSubdomain = z.string().refine(isDns1123Subdomain, {
  message: "expected a DNS-1123 subdomain (lowercase alphanumerics, '-' and '.', at most 253)",
});

/** A map of label key to value, each checked as Kubernetes does. */
export const labels = z.record(z.string(), z.string()).superRefine((m, ctx) => {
  for (const [k, v] of Object.entries(m)) {
    const kp = labelKeyProblem(k);
    if (kp) ctx.addIssue({ code: "custom", message: kp, path: [k] });
    const vp = labelValueProblem(k, v);
    if (vp) ctx.addIssue({ code: "custom", message: vp, path: [k] });
  }
});

export const annotations = z.record(z.string(), z.string());

/** Kubernetes ObjectMeta: what users write, plus the server-populated fields found in exported YAML. */
export const objectMeta = z.strictObject({
  name: dnsSubdomain,
  namespace: dnsLabel.optional(),
  labels: labels.optional(),
  annotations: annotations.optional(),
  generateName: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: z.union([z.string(), z.null()]).optional(),
  deletionTimestamp: z.string().optional(),
  deletionGracePeriodSeconds: z.number().int().optional(),
  ownerReferences: z.array(z.record(z.string(), z.unknown())).optional(),
  finalizers: z.array(z.string()).optional(),
  managedFields: z.array(z.unknown()).optional(),
  selfLink: z.string().optional(),
});
export type ObjectMeta = z.infer<typeof objectMeta>;

/** Istio's WorkloadSelector. */
export const workloadSelector = z.strictObject({ matchLabels: labels.optional() });
export type WorkloadSelector = z.infer<typeof workloadSelector>;

/** Kubernetes metav1.LabelSelector. */
export const labelSelector = z.strictObject({
  matchLabels: labels.optional(),
  matchExpressions: z
    .array(
      z
        .strictObject({
          key: z.string(),
          operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
          values: z.array(z.string()).optional(),
        })
        .superRefine((e, ctx) => {
          const kp = labelKeyProblem(e.key);
          if (kp) ctx.addIssue({ code: "custom", message: kp, path: ["key"] });
          const needsValues = e.operator === "In" || e.operator === "NotIn";
          const n = e.values?.length ?? 0;
          if (needsValues && n === 0) {
            ctx.addIssue({
              code: "custom",
              message: `operator ${e.operator} needs a non-empty values list`,
              path: ["values"],
            });
          }
          if (!needsValues && n > 0) {
            ctx.addIssue({
              code: "custom",
              message: `operator ${e.operator} takes no values`,
              path: ["values"],
            });
          }
        }),
    )
    .optional(),
});
export type LabelSelector = z.infer<typeof labelSelector>;

/** Istio/Gateway API PolicyTargetReference. */
export const policyTargetRef = z.strictObject({
  group: z.string().optional(),
  kind: z.string(),
  name: z.string().min(1),
  namespace: z.string().optional(),
});
export type PolicyTargetRef = z.infer<typeof policyTargetRef>;

export const portNumber = z
  .number({ error: "expected a port number (integer 1-65535)" })
  .int({ error: "expected a port number (integer 1-65535)" })
  .min(1, { error: "expected a port number (integer 1-65535)" })
  .max(65535, { error: "expected a port number (integer 1-65535)" });

export function isIpAddress(s: string): boolean {
  return ipaddr.isValid(s) && (ipaddr.IPv4.isValidFourPartDecimal(s) || s.includes(":"));
}

export function isCidr(s: string): boolean {
  if (!s.includes("/")) return false;
  try {
    const [addr] = ipaddr.parseCIDR(s);
    return isIpAddress(s.slice(0, s.indexOf("/"))) && addr !== undefined;
  } catch {
    return false;
  }
}

export const ipAddress = z.string().refine(isIpAddress, { message: "expected an IPv4 or IPv6 address" });
export const ipOrCidr = z.string().refine((s) => isIpAddress(s) || isCidr(s), {
  message: "expected an IP address or a CIDR such as 10.0.0.0/16",
});

/** A protobuf Duration in its JSON form: seconds with an 's' suffix, e.g. "1.5s"; Kubernetes-style "100ms" / "1m" too. */
const DURATION = /^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/;
export const duration = z
  .string()
  .refine((s) => DURATION.test(s), { message: 'expected a duration such as "1.5s", "100ms" or "1m"' });

/** Parse a duration string into milliseconds (the schema has already checked the form). */
export function durationMs(s: string): number {
  const unit: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1000,
    ms: 1,
    us: 0.001,
    µs: 0.001,
    ns: 0.000001,
  };
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    total += Number(m[1]) * (unit[m[2] ?? "s"] ?? 0);
  }
  return total;
}

export const intOrString = z.union([z.number().int(), z.string().min(1)], {
  error: "expected an integer or a string",
});

/** Marks a refinement issue as a missing required field (load.ts reports it as AMBIT_E_MISSING_FIELD). */
export const MISSING_FIELD_PARAMS = { ambitCode: "AMBIT_E_MISSING_FIELD" } as const;

/** Report a field that a rule makes required (e.g. externalName for type ExternalName). */
export function addMissing(ctx: z.RefinementCtx, path: PropertyKey[], message: string): void {
  ctx.addIssue({ code: "custom", message, path, params: MISSING_FIELD_PARAMS });
}

/** Report the second and later items that share a key (a name, a port), at the item's key field. */
export function checkUnique<T>(
  ctx: z.RefinementCtx,
  items: readonly T[] | undefined,
  keyOf: (item: T) => string | number | undefined,
  pathOf: (index: number) => PropertyKey[],
  what: string,
): void {
  const seen = new Set<string | number>();
  items?.forEach((item, i) => {
    const key = keyOf(item);
    if (key === undefined) return;
    if (seen.has(key))
      ctx.addIssue({ code: "custom", message: `duplicate ${what} ${JSON.stringify(key)}`, path: pathOf(i) });
    seen.add(key);
  });
}

// Escapes RE2 (and Go's regexp, which Istio validates with) understands; anything else after a
// backslash and a letter or digit is an error there, although JavaScript would accept it.
const RE2_ESCAPE_LETTERS = new Set("aftnrvAbBzdDsSwWpPQEx0".split(""));
const RE2_MAX_REPEAT = 1000;
const RE2_MAX_LENGTH = 1024;

/**
 * Whether a regex is valid RE2 syntax, as Istio (Go regexp) and Envoy (RE2) require. JavaScript's
 * engine differs both ways, so constructs RE2 lacks (backreferences, lookaround, atomic groups)
 * are rejected by a scan, RE2-only syntax (inline flags, \z, \pL, POSIX classes, \Q..\E) is
 * rewritten to an equivalent JavaScript shape, and the result is compiled to catch the rest.
 */
export function re2Problem(re: string): string | undefined {
  if (re.length > RE2_MAX_LENGTH) return `regex is too long (at most ${RE2_MAX_LENGTH} characters)`;
  let js = "";
  let inClass = false;
  for (let i = 0; i < re.length; i++) {
    const c = re.charAt(i);
    if (c === "\\") {
      const n = re.charAt(i + 1);
      if (n === "") return "regex ends with a lone backslash";
      if (/[A-Za-z0-9]/.test(n)) {
        if (/[1-9]/.test(n) && !(n <= "7" && /[0-7]/.test(re.charAt(i + 2)))) {
          return `backreference \\${n} is not supported (RE2 syntax)`;
        }
        if (n === "k") return "named backreferences are not supported (RE2 syntax)";
        if (!/[1-7]/.test(n) && !RE2_ESCAPE_LETTERS.has(n)) return `invalid escape \\${n} (RE2 syntax)`;
        if (n === "Q") {
          const end = re.indexOf("\\E", i + 2);
          const literal = end < 0 ? re.slice(i + 2) : re.slice(i + 2, end);
          js += literal.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
          i = end < 0 ? re.length : end + 1;
          continue;
        }
        if (n === "z" || n === "A") {
          js += inClass ? "x" : n === "z" ? "$" : "^";
          i++;
          continue;
        }
        if (n === "p" || n === "P" || n === "x") {
          let end = i + 2;
          if (re.charAt(end) === "{") {
            end = re.indexOf("}", end);
            if (end < 0) return `unterminated \\${n}{...} (RE2 syntax)`;
          } else if (n === "x") {
            if (!/^[0-9A-Fa-f]{2}$/.test(re.slice(i + 2, i + 4))) return "\\x needs two hex digits or {...}";
            end = i + 3;
          }
          js += "x";
          i = end;
          continue;
        }
      }
      js += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === "[" && re.charAt(i + 1) === ":") {
        const close = re.indexOf(":]", i + 2);
        if (close >= 0) {
          js += "x";
          i = close + 1;
          continue;
        }
      }
      if (c === "]") inClass = false;
      js += c === "[" ? "\\[" : c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      js += c;
      if (re.charAt(i + 1) === "^") js += re.charAt(++i);
      if (re.charAt(i + 1) === "]") {
        js += "\\]";
        i++;
      }
      continue;
    }
    if (c === "(" && re.charAt(i + 1) === "?") {
      const rest = re.slice(i + 2);
      if (/^<?[=!]/.test(rest)) return "lookahead and lookbehind are not supported (RE2 syntax)";
      if (rest.startsWith(">")) return "atomic groups are not supported (RE2 syntax)";
      if (/^P[=>]/.test(rest)) return "named backreferences are not supported (RE2 syntax)";
      const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (named) {
        js += `(?<${named[1] ?? ""}>`;
        i += 1 + named[0].length;
        continue;
      }
      const flags = /^[imsU]*(?:-[imsU]*)?([:)])/.exec(rest);
      if (!flags || flags[0] === ")") return `unsupported group syntax "(?${rest.slice(0, 3)}" (RE2 syntax)`;
      if (flags[1] === ":") js += "(?:";
      i += 1 + flags[0].length;
      continue;
    }
    if (c === "{") {
      const rep = /^\{(\d+)(?:,(\d*))?\}/.exec(re.slice(i));
      if (rep && (Number(rep[1]) > RE2_MAX_REPEAT || Number(rep[2] || 0) > RE2_MAX_REPEAT)) {
        return `repeat count in ${rep[0]} exceeds ${RE2_MAX_REPEAT} (RE2 limit)`;
      }
    }
    js += c;
  }
  try {
    new RegExp(js);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, "")}`;
  }
  return undefined;
}

/** A string that must be a valid RE2 regular expression. */
export const re2Regex = z.string().superRefine((s, ctx) => {
  const problem = re2Problem(s);
  if (problem) ctx.addIssue({ code: "custom", message: `"${s}": ${problem}` });
});
