// security.istio.io: AuthorizationPolicy, PeerAuthentication, RequestAuthentication — the shapes of
// istio/api security/v1 (served also as v1beta1), with Istio's own validation rules.
import { z } from "zod";
import { duration, ipOrCidr, policyTargetRef, workloadSelector } from "./common.js";

const strings = z.array(z.string());

/** Values may carry one '*' as prefix or suffix wildcard, or be '*' alone; never '*' in the middle. */
const matchValues = z.array(z.string()).superRefine((vs, ctx) => {
  vs.forEach((v, i) => {
    if (v === "")
      ctx.addIssue({ code: "custom", message: "empty string is not a valid match value", path: [i] });
    const inner = v.slice(1, -1);
    if (v.length > 1 && inner.includes("*")) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}": '*' is only allowed alone, as a prefix or as a suffix`,
        path: [i],
      });
    }
  });
});

const ipBlocks = z.array(ipOrCidr);

const portStrings = z.array(z.string()).superRefine((vs, ctx) => {
  vs.forEach((v, i) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n > 65535) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}": expected a port number 0-65535 as a string`,
        path: [i],
      });
    }
  });
});

const PATH_TEMPLATE = /\{\*\*?\}/;
const paths = z.array(z.string()).superRefine((vs, ctx) => {
  vs.forEach((v, i) => {
    if (v === "") ctx.addIssue({ code: "custom", message: "empty path", path: [i] });
    if (PATH_TEMPLATE.test(v) || v.includes("{")) {
      const problem = pathTemplateProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: `"${v}": ${problem}`, path: [i] });
    } else if (v.length > 1 && v.slice(1, -1).includes("*")) {
      ctx.addIssue({
        code: "custom",
        message: `"${v}": '*' is only allowed alone, as a prefix or as a suffix`,
        path: [i],
      });
    }
  });
});

/** Istio's rules for path templates: whole segments only, {**} at most once and never followed by {*}. */
export function pathTemplateProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "a path template must start with '/'";
  const segments = path.split("/").slice(1);
  let seenDouble = false;
  for (const seg of segments) {
    if (seg.includes("{") || seg.includes("}")) {
      if (seg !== "{*}" && seg !== "{**}") return "'{*}' and '{**}' must each be a whole path segment";
      if (seg === "{**}") {
        if (seenDouble) return "'{**}' may appear only once";
        seenDouble = true;
      } else if (seenDouble) {
        return "'{*}' cannot follow '{**}'";
      }
    } else if (seg.includes("*")) {
      return "'*' cannot be mixed with '{*}' or '{**}' templates";
    }
  }
  return undefined;
}

export const SOURCE_FIELDS = [
  "principals",
  "notPrincipals",
  "requestPrincipals",
  "notRequestPrincipals",
  "namespaces",
  "notNamespaces",
  "serviceAccounts",
  "notServiceAccounts",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;

export const source = z
  .strictObject({
    principals: matchValues.optional(),
    notPrincipals: matchValues.optional(),
    requestPrincipals: matchValues.optional(),
    notRequestPrincipals: matchValues.optional(),
    namespaces: matchValues.optional(),
    notNamespaces: matchValues.optional(),
    serviceAccounts: strings.optional(),
    notServiceAccounts: strings.optional(),
    ipBlocks: ipBlocks.optional(),
    notIpBlocks: ipBlocks.optional(),
    remoteIpBlocks: ipBlocks.optional(),
    notRemoteIpBlocks: ipBlocks.optional(),
  })
  .superRefine((s, ctx) => {
    if (!SOURCE_FIELDS.some((f) => s[f] !== undefined)) {
      ctx.addIssue({ code: "custom", message: "source must set at least one field" });
    }
    const sa = s.serviceAccounts !== undefined || s.notServiceAccounts !== undefined;
    const pn = [s.principals, s.notPrincipals, s.namespaces, s.notNamespaces].some((v) => v !== undefined);
    if (sa && pn) {
      ctx.addIssue({
        code: "custom",
        message:
          "serviceAccounts/notServiceAccounts cannot be combined with principals or namespaces in one source",
      });
    }
    for (const [i, v] of [...(s.serviceAccounts ?? []), ...(s.notServiceAccounts ?? [])].entries()) {
      const parts = v.split("/");
      if (v === "" || parts.length > 2 || parts.some((p) => p === "") || v.includes("*")) {
        ctx.addIssue({
          code: "custom",
          message: `"${v}": expected a service account name or "namespace/name" (no wildcards)`,
          path: [i < (s.serviceAccounts?.length ?? 0) ? "serviceAccounts" : "notServiceAccounts"],
        });
      }
    }
  });
export type Source = z.infer<typeof source>;

export const OPERATION_FIELDS = [
  "hosts",
  "notHosts",
  "ports",
  "notPorts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
] as const;

export const operation = z
  .strictObject({
    hosts: matchValues.optional(),
    notHosts: matchValues.optional(),
    ports: portStrings.optional(),
    notPorts: portStrings.optional(),
    methods: matchValues.optional(),
    notMethods: matchValues.optional(),
    paths: paths.optional(),
    notPaths: paths.optional(),
  })
  .superRefine((o, ctx) => {
    if (!OPERATION_FIELDS.some((f) => o[f] !== undefined)) {
      ctx.addIssue({ code: "custom", message: "operation must set at least one field" });
    }
  });
export type Operation = z.infer<typeof operation>;

const HEADER_KEY = /^request\.headers\[[^\]]+\]$/;
const CLAIM_KEY = /^request\.auth\.claims(\[[^\][]+\])+$/;
export const CONDITION_KEYS = [
  "source.ip",
  "remote.ip",
  "source.namespace",
  "source.principal",
  "source.serviceAccount",
  "request.auth.principal",
  "request.auth.audiences",
  "request.auth.presenter",
  "destination.ip",
  "destination.port",
  "connection.sni",
] as const;

export function conditionKeyProblem(key: string): string | undefined {
  if ((CONDITION_KEYS as readonly string[]).includes(key)) return undefined;
  if (HEADER_KEY.test(key) || CLAIM_KEY.test(key)) return undefined;
  if (key.startsWith("experimental.envoy.filters.")) return undefined;
  return `unknown condition key "${key}"; expected one of ${CONDITION_KEYS.join(", ")}, request.headers[NAME], request.auth.claims[NAME]...`;
}

export const condition = z
  .strictObject({
    key: z.string(),
    values: strings.optional(),
    notValues: strings.optional(),
  })
  .superRefine((c, ctx) => {
    const kp = conditionKeyProblem(c.key);
    if (kp) ctx.addIssue({ code: "custom", message: kp, path: ["key"] });
    if ((c.values?.length ?? 0) === 0 && (c.notValues?.length ?? 0) === 0) {
      ctx.addIssue({ code: "custom", message: "at least one of values or notValues must be set" });
    }
    const check = (vs: string[] | undefined, field: string): void => {
      vs?.forEach((v, i) => {
        if (c.key === "source.ip" || c.key === "remote.ip" || c.key === "destination.ip") {
          if (!ipOrCidr.safeParse(v).success) {
            ctx.addIssue({
              code: "custom",
              message: `"${v}": expected an IP address or CIDR for ${c.key}`,
              path: [field, i],
            });
          }
        } else if (c.key === "destination.port" && (!/^\d+$/.test(v) || Number(v) > 65535)) {
          ctx.addIssue({
            code: "custom",
            message: `"${v}": expected a port number 0-65535`,
            path: [field, i],
          });
        }
      });
    };
    check(c.values, "values");
    check(c.notValues, "notValues");
  });
export type Condition = z.infer<typeof condition>;

export const rule = z.strictObject({
  from: z
    .array(z.strictObject({ source: source }))
    .min(1, { error: "from, when present, must list at least one source" })
    .optional(),
  to: z
    .array(z.strictObject({ operation: operation }))
    .min(1, { error: "to, when present, must list at least one operation" })
    .optional(),
  when: z
    .array(condition)
    .min(1, { error: "when, when present, must list at least one condition" })
    .optional(),
});
export type Rule = z.infer<typeof rule>;

export const authorizationPolicySpec = z
  .strictObject({
    selector: workloadSelector.optional(),
    targetRef: policyTargetRef.optional(),
    targetRefs: z.array(policyTargetRef).optional(),
    rules: z.array(rule).optional(),
    action: z.enum(["ALLOW", "DENY", "AUDIT", "CUSTOM"]).default("ALLOW"),
    provider: z.strictObject({ name: z.string().min(1) }).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.selector && (s.targetRef || s.targetRefs)) {
      ctx.addIssue({
        code: "custom",
        message: "only one of selector or targetRef/targetRefs can be set",
        path: ["selector"],
      });
    }
    if (s.targetRef && s.targetRefs) {
      ctx.addIssue({
        code: "custom",
        message: "only one of targetRef or targetRefs can be set",
        path: ["targetRef"],
      });
    }
    if (s.action === "CUSTOM" && !s.provider) {
      ctx.addIssue({ code: "custom", message: "action CUSTOM needs provider.name", path: ["provider"] });
    }
    if (s.action !== "CUSTOM" && s.provider) {
      ctx.addIssue({
        code: "custom",
        message: `provider is only allowed with action CUSTOM (action is ${s.action})`,
        path: ["provider"],
      });
    }
  });
export type AuthorizationPolicySpec = z.infer<typeof authorizationPolicySpec>;

const mtlsMode = z.enum(["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]);
export type MtlsMode = z.infer<typeof mtlsMode>;

export const peerAuthenticationSpec = z
  .strictObject({
    selector: workloadSelector.optional(),
    mtls: z.strictObject({ mode: mtlsMode.default("UNSET") }).optional(),
    portLevelMtls: z.record(z.string(), z.strictObject({ mode: mtlsMode.default("UNSET") })).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.portLevelMtls) {
      if (!s.selector || Object.keys(s.selector.matchLabels ?? {}).length === 0) {
        ctx.addIssue({
          code: "custom",
          message: "portLevelMtls requires a selector with matchLabels",
          path: ["portLevelMtls"],
        });
      }
      for (const port of Object.keys(s.portLevelMtls)) {
        if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
          ctx.addIssue({
            code: "custom",
            message: `"${port}": expected a port number 1-65535`,
            path: ["portLevelMtls", port],
          });
        }
      }
    }
  });
export type PeerAuthenticationSpec = z.infer<typeof peerAuthenticationSpec>;

const jwtHeader = z.strictObject({ name: z.string().min(1), prefix: z.string().optional() });

export const jwtRule = z
  .strictObject({
    issuer: z.string().min(1, { error: "issuer must not be empty" }),
    audiences: strings.optional(),
    jwksUri: z.string().optional(),
    jwks: z.string().optional(),
    fromHeaders: z.array(jwtHeader).optional(),
    fromParams: strings.optional(),
    fromCookies: strings.optional(),
    outputPayloadToHeader: z.string().optional(),
    forwardOriginalToken: z.boolean().optional(),
    outputClaimToHeaders: z
      .array(z.strictObject({ header: z.string().min(1), claim: z.string().min(1) }))
      .optional(),
    timeout: duration.optional(),
    spaceDelimitedClaims: strings.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.jwksUri !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(r.jwksUri);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
        ctx.addIssue({
          code: "custom",
          message: `"${r.jwksUri}": expected an http(s) URL`,
          path: ["jwksUri"],
        });
      }
    }
    if (r.jwks !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(r.jwks);
      } catch {
        parsed = undefined;
      }
      const keys = (parsed as { keys?: unknown } | undefined)?.keys;
      if (!Array.isArray(keys)) {
        ctx.addIssue({
          code: "custom",
          message: 'expected a JSON Web Key Set: {"keys": [...]}',
          path: ["jwks"],
        });
      }
    }
  });
export type JwtRule = z.infer<typeof jwtRule>;

export const requestAuthenticationSpec = z
  .strictObject({
    selector: workloadSelector.optional(),
    targetRef: policyTargetRef.optional(),
    targetRefs: z.array(policyTargetRef).optional(),
    jwtRules: z.array(jwtRule).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.selector && (s.targetRef || s.targetRefs)) {
      ctx.addIssue({
        code: "custom",
        message: "only one of selector or targetRef/targetRefs can be set",
        path: ["selector"],
      });
    }
    const seen = new Set<string>();
    s.jwtRules?.forEach((r, i) => {
      if (seen.has(r.issuer)) {
        ctx.addIssue({
          code: "custom",
          message: `issuer "${r.issuer}" is listed twice`,
          path: ["jwtRules", i, "issuer"],
        });
      }
      seen.add(r.issuer);
    });
  });
export type RequestAuthenticationSpec = z.infer<typeof requestAuthenticationSpec>;
