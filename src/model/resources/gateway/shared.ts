// Gateway API building blocks shared by Gateway, HTTPRoute and GRPCRoute: names, references,
// hostnames, durations, header filters, mirrors — with the CRD's defaults and CEL rules.
import { z } from "zod";
import { addMissing, checkUnique, isDns1123Label, isDns1123Subdomain, labelKeyProblem } from "../common.js";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";

const GROUP = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

export const group = z
  .string()
  .max(253)
  .regex(GROUP, { error: 'expected an API group: "" or a DNS subdomain' });
export const kind = z
  .string()
  .min(1)
  .max(63)
  .regex(KIND, { error: "expected a kind: a letter, then letters, digits or '-'" });
export const objectName = z.string().min(1, { error: "name must not be empty" }).max(253);
export const namespace = z
  .string()
  .refine(isDns1123Label, { message: "expected a namespace name (DNS-1123 label)" });
export const sectionName = z
  .string()
  .refine(isDns1123Subdomain, { message: "expected a section name (DNS-1123 subdomain)" });
export const gwPort = z
  .number({ error: "expected a port number (integer 1-65535)" })
  .int({ error: "expected a port number (integer 1-65535)" })
  .min(1, { error: "expected a port number (integer 1-65535)" })
  .max(65535, { error: "expected a port number (integer 1-65535)" });

/** A hostname, optionally with a leading "*." label; lower case, no IP addresses, no port. */
export const hostname = z.string().max(253).regex(HOSTNAME, {
  error: 'expected a lower-case DNS name, optionally starting with "*." (no IP, no port)',
});
export const preciseHostname = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, {
    error: "expected a lower-case DNS name (no wildcard)",
  });

export const headerName = z
  .string()
  .min(1)
  .max(256)
  .regex(HEADER_NAME, { error: "expected an HTTP header name (RFC 7230 token)" });

/** Gateway API's duration form: up to four number+unit pairs, units h, m, s, ms ("1h30m", "500ms"). */
export const gwDuration = z
  .string()
  .regex(DURATION, { error: 'expected a duration such as "10s", "500ms" or "1m30s" (units h, m, s, ms)' });

export function gwDurationMs(s: string): number {
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of s.matchAll(/(\d+)(ms|h|m|s)/g)) total += Number(m[1]) * (unit[m[2] ?? "s"] ?? 0);
  return total;
}

/** A label or annotation key, as Gateway API restricts infrastructure metadata and TLS options. */
export const qualifiedKey = z.string().superRefine((k, ctx) => {
  const problem = labelKeyProblem(k);
  if (problem) ctx.addIssue({ code: "custom", message: problem.replace(/^label key/, "key") });
});

export const parentRef = z.strictObject({
  group: group.default(GATEWAY_GROUP),
  kind: kind.default("Gateway"),
  namespace: namespace.optional(),
  name: objectName,
  sectionName: sectionName.optional(),
  port: gwPort.optional(),
});
export type ParentRef = z.infer<typeof parentRef>;

/** Parent references shared by every route kind. */
export const commonRouteFields = {
  parentRefs: z.array(parentRef).max(32).optional(),
  useDefaultGateways: z.enum(["All", "None"]).optional(),
};

const backendObjectFields = {
  group: group.default(""),
  kind: kind.default("Service"),
  name: objectName,
  namespace: namespace.optional(),
  port: gwPort.optional(),
};

/** A core Service has several ports; which one must be named. */
function requireServicePort(
  ref: { group: string; kind: string; port?: number | undefined },
  ctx: z.RefinementCtx,
): void {
  if (ref.group === "" && ref.kind === "Service" && ref.port === undefined)
    addMissing(ctx, ["port"], "a Service backend needs a port");
}

export const backendObjectReference = z.strictObject(backendObjectFields).superRefine(requireServicePort);
export type BackendObjectReference = z.infer<typeof backendObjectReference>;

/** backendRef fields with a weight (0 sends no traffic); routes add their own filters. */
export function backendRef<F extends z.ZodType>(filters: F) {
  return z
    .strictObject({
      ...backendObjectFields,
      weight: z
        .number()
        .int()
        .min(0, { error: "weight must be 0-1000000" })
        .max(1_000_000, { error: "weight must be 0-1000000" })
        .default(1),
      filters: filters.optional(),
    })
    .superRefine(requireServicePort);
}

export const localObjectReference = z.strictObject({ group, kind, name: objectName });

export const secretObjectReference = z.strictObject({
  group: group.default(""),
  kind: kind.default("Secret"),
  name: objectName,
  namespace: namespace.optional(),
});

const httpHeader = z.strictObject({ name: headerName, value: z.string().min(1).max(4096) });

export const headerFilter = z
  .strictObject({
    set: z.array(httpHeader).max(16).optional(),
    add: z.array(httpHeader).max(16).optional(),
    remove: z.array(z.string().min(1)).max(16).optional(),
  })
  .superRefine((f, ctx) => {
    checkUnique(
      ctx,
      f.set,
      (h) => h.name,
      (i) => ["set", i, "name"],
      "header",
    );
    checkUnique(
      ctx,
      f.add,
      (h) => h.name,
      (i) => ["add", i, "name"],
      "header",
    );
    checkUnique(
      ctx,
      f.remove,
      (h) => h,
      (i) => ["remove", i],
      "header",
    );
  });
export type HeaderFilter = z.infer<typeof headerFilter>;

export const requestMirror = z
  .strictObject({
    backendRef: backendObjectReference,
    percent: z.number().int().min(0).max(100, { error: "percent must be 0-100" }).optional(),
    fraction: z
      .strictObject({
        numerator: z.number().int().min(0),
        denominator: z.number().int().min(1).default(100),
      })
      .superRefine((f, ctx) => {
        if (f.numerator > f.denominator)
          ctx.addIssue({
            code: "custom",
            message: "numerator must be at most denominator",
            path: ["numerator"],
          });
      })
      .optional(),
  })
  .superRefine((m, ctx) => {
    if (m.percent !== undefined && m.fraction !== undefined)
      ctx.addIssue({
        code: "custom",
        message: "only one of percent or fraction may be set",
        path: ["fraction"],
      });
  });

/**
 * A filter names its type and carries the matching config object: that one is required and every
 * other config object is forbidden (Gateway API's union rule).
 */
export function checkFilterUnion(
  f: Record<string, unknown> & { type: string },
  configKeys: Record<string, string>,
  ctx: z.RefinementCtx,
): void {
  const wanted = configKeys[f.type];
  if (wanted && f[wanted] === undefined) addMissing(ctx, [wanted], `filter type ${f.type} needs ${wanted}`);
  for (const [type, key] of Object.entries(configKeys)) {
    if (type !== f.type && f[key] !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: `${key} is only allowed with filter type ${type} (type is ${f.type})`,
        path: [key],
      });
    }
  }
}

/** Filter types that may appear at most once in a list. */
export function checkFilterRepeats(
  filters: { type: string }[] | undefined,
  once: readonly string[],
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  filters?.forEach((f, i) => {
    if (once.includes(f.type) && seen.has(f.type))
      ctx.addIssue({ code: "custom", message: `filter ${f.type} cannot be repeated`, path: [i, "type"] });
    seen.add(f.type);
  });
}

const sessionCookie = z.strictObject({
  name: headerName.optional(),
  path: z.string().max(1024).default("/"),
  lifetimeType: z.enum(["Permanent", "Session"]).default("Session"),
});

/** Session persistence (experimental; accepts both the v1.2-era and current field sets). */
export const sessionPersistence = z
  .strictObject({
    sessionName: z.string().max(128).optional(),
    absoluteTimeout: gwDuration.optional(),
    idleTimeout: gwDuration.optional(),
    type: z.enum(["Cookie", "Header"]).default("Cookie"),
    cookieConfig: z
      .strictObject({ lifetimeType: z.enum(["Permanent", "Session"]).default("Session") })
      .optional(),
    cookie: sessionCookie.optional(),
    header: z.strictObject({ name: headerName }).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.cookie && s.type !== "Cookie")
      ctx.addIssue({ code: "custom", message: "cookie is only allowed with type Cookie", path: ["cookie"] });
    if (s.header && s.type !== "Header")
      ctx.addIssue({ code: "custom", message: "header is only allowed with type Header", path: ["header"] });
    if (s.type === "Header" && !s.header) addMissing(ctx, ["header"], "type Header needs header.name");
    const permanent = s.cookie?.lifetimeType === "Permanent" || s.cookieConfig?.lifetimeType === "Permanent";
    if (permanent && !s.absoluteTimeout)
      addMissing(ctx, ["absoluteTimeout"], "a Permanent cookie needs absoluteTimeout");
  });
