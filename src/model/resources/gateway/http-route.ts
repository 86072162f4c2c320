// HTTPRoute (gateway.networking.k8s.io): matches, filters and weighted backends, with the CRD's
// defaults (a rule matches PathPrefix "/" unless told otherwise) and its CEL rules.
import { z } from "zod";
import { addMissing, checkUnique, re2Problem } from "../common.js";
import {
  backendRef,
  checkFilterRepeats,
  checkFilterUnion,
  commonRouteFields,
  gwDuration,
  gwDurationMs,
  gwPort,
  headerFilter,
  headerName,
  hostname,
  localObjectReference,
  preciseHostname,
  requestMirror,
  sectionName,
  sessionPersistence,
} from "./shared.js";

export const HTTP_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
] as const;
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;

/** Gateway API's rules for Exact/PathPrefix values; regexes must be RE2 (what the proxy runs). */
export function pathValueProblem(type: string, value: string): string | undefined {
  if (type === "RegularExpression") return re2Problem(value);
  if (!value.startsWith("/")) return "must be an absolute path starting with '/'";
  for (const bad of ["//", "/./", "/../", "%2f", "%2F", "#"])
    if (value.includes(bad)) return `must not contain '${bad}'`;
  if (value.endsWith("/..") || value.endsWith("/.")) return "must not end with '/.' or '/..'";
  if (!PATH_CHARS.test(value)) return "contains characters not allowed in a path (percent-encode them)";
  return undefined;
}

export const pathMatch = z
  .strictObject({
    type: z.enum(["Exact", "PathPrefix", "RegularExpression"]).default("PathPrefix"),
    value: z.string().max(1024).default("/"),
  })
  .superRefine((p, ctx) => {
    const problem = pathValueProblem(p.type, p.value);
    if (problem) ctx.addIssue({ code: "custom", message: `path "${p.value}": ${problem}`, path: ["value"] });
  });

function valueMatch(maxValue: number) {
  return z
    .strictObject({
      type: z.enum(["Exact", "RegularExpression"]).default("Exact"),
      name: headerName,
      value: z.string().min(1, { error: "value must not be empty" }).max(maxValue),
    })
    .superRefine((m, ctx) => {
      const problem = m.type === "RegularExpression" ? re2Problem(m.value) : undefined;
      if (problem) ctx.addIssue({ code: "custom", message: `"${m.value}": ${problem}`, path: ["value"] });
    });
}
export const headerMatch = valueMatch(4096);

const DEFAULT_PATH = { type: "PathPrefix", value: "/" } as const;

export const httpRouteMatch = z
  .strictObject({
    path: pathMatch.default(DEFAULT_PATH),
    headers: z.array(headerMatch).max(16).optional(),
    queryParams: z.array(valueMatch(1024)).max(16).optional(),
    method: z.enum(HTTP_METHODS).optional(),
  })
  .superRefine((m, ctx) => {
    checkUnique(
      ctx,
      m.headers,
      (h) => h.name,
      (i) => ["headers", i, "name"],
      "header match",
    );
    checkUnique(
      ctx,
      m.queryParams,
      (q) => q.name,
      (i) => ["queryParams", i, "name"],
      "query parameter match",
    );
  });
export type HTTPRouteMatch = z.infer<typeof httpRouteMatch>;

const pathModifier = z
  .strictObject({
    type: z.enum(["ReplaceFullPath", "ReplacePrefixMatch"]),
    replaceFullPath: z.string().max(1024).optional(),
    replacePrefixMatch: z.string().max(1024).optional(),
  })
  .superRefine((p, ctx) => {
    const want = p.type === "ReplaceFullPath" ? "replaceFullPath" : "replacePrefixMatch";
    const other = p.type === "ReplaceFullPath" ? "replacePrefixMatch" : "replaceFullPath";
    if (p[want] === undefined) addMissing(ctx, [want], `type ${p.type} needs ${want}`);
    if (p[other] !== undefined)
      ctx.addIssue({ code: "custom", message: `${other} is not allowed with type ${p.type}`, path: [other] });
  });

const CORS_ORIGIN = /(^\*$)|(^(http(s)?):\/\/(((\*\.)?([a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$)/;

function starAlone<T extends z.ZodType<string>>(item: T, what: string) {
  return z.array(item).superRefine((list, ctx) => {
    if ((list as string[]).includes("*") && list.length > 1)
      ctx.addIssue({ code: "custom", message: `${what} cannot contain "*" alongside other values` });
    checkUnique(
      ctx,
      list,
      (v) => v,
      (i) => [i],
      what,
    );
  });
}

const corsFilter = z.strictObject({
  allowOrigins: starAlone(
    z
      .string()
      .max(253)
      .regex(CORS_ORIGIN, { error: 'expected "*" or an origin such as https://example.com' }),
    "allowOrigins",
  )
    .max(64)
    .optional(),
  allowCredentials: z.boolean().optional(),
  allowMethods: starAlone(z.enum([...HTTP_METHODS, "*"]), "allowMethods")
    .max(9)
    .optional(),
  allowHeaders: starAlone(headerName, "allowHeaders").max(64).optional(),
  exposeHeaders: z.array(headerName).max(64).optional(),
  maxAge: z.number().int().min(1, { error: "maxAge must be at least 1 second" }).default(5),
});

const HTTP_FILTER_CONFIG = {
  RequestHeaderModifier: "requestHeaderModifier",
  ResponseHeaderModifier: "responseHeaderModifier",
  RequestMirror: "requestMirror",
  RequestRedirect: "requestRedirect",
  URLRewrite: "urlRewrite",
  ExtensionRef: "extensionRef",
  CORS: "cors",
} as const;
const ONCE = [
  "CORS",
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestRedirect",
  "URLRewrite",
] as const;

export const httpRouteFilter = z
  .strictObject({
    type: z.enum([
      "RequestHeaderModifier",
      "ResponseHeaderModifier",
      "RequestMirror",
      "RequestRedirect",
      "URLRewrite",
      "ExtensionRef",
      "CORS",
    ]),
    requestHeaderModifier: headerFilter.optional(),
    responseHeaderModifier: headerFilter.optional(),
    requestMirror: requestMirror.optional(),
    requestRedirect: z
      .strictObject({
        scheme: z.enum(["http", "https"]).optional(),
        hostname: preciseHostname.optional(),
        path: pathModifier.optional(),
        port: gwPort.optional(),
        statusCode: z.literal([301, 302, 303, 307, 308]).default(302),
      })
      .optional(),
    urlRewrite: z
      .strictObject({ hostname: preciseHostname.optional(), path: pathModifier.optional() })
      .optional(),
    extensionRef: localObjectReference.optional(),
    cors: corsFilter.optional(),
  })
  .superRefine((f, ctx) => checkFilterUnion(f, HTTP_FILTER_CONFIG, ctx));
export type HTTPRouteFilter = z.infer<typeof httpRouteFilter>;

const filterList = z
  .array(httpRouteFilter)
  .max(16)
  .superRefine((filters, ctx) => {
    checkFilterRepeats(filters, ONCE, ctx);
    const redirect = filters.findIndex((f) => f.type === "RequestRedirect");
    const rewrite = filters.findIndex((f) => f.type === "URLRewrite");
    if (redirect >= 0 && rewrite >= 0) {
      ctx.addIssue({
        code: "custom",
        message: "RequestRedirect and URLRewrite cannot be used together",
        path: [Math.max(redirect, rewrite), "type"],
      });
    }
  });

export const httpBackendRef = backendRef(filterList);
export type HTTPBackendRef = z.infer<typeof httpBackendRef>;

const usesPrefixReplace = (filters: HTTPRouteFilter[] | undefined): boolean =>
  (filters ?? []).some(
    (f) =>
      f.requestRedirect?.path?.type === "ReplacePrefixMatch" ||
      f.urlRewrite?.path?.type === "ReplacePrefixMatch",
  );

export const httpRouteRule = z
  .strictObject({
    name: sectionName.optional(),
    matches: z
      .array(httpRouteMatch)
      .max(64)
      .default([{ path: DEFAULT_PATH }]),
    filters: filterList.optional(),
    backendRefs: z.array(httpBackendRef).max(16).optional(),
    timeouts: z
      .strictObject({ request: gwDuration.optional(), backendRequest: gwDuration.optional() })
      .superRefine((t, ctx) => {
        if (
          t.request &&
          t.backendRequest &&
          gwDurationMs(t.request) !== 0 &&
          gwDurationMs(t.backendRequest) > gwDurationMs(t.request)
        ) {
          ctx.addIssue({
            code: "custom",
            message: "backendRequest timeout cannot be longer than the request timeout",
            path: ["backendRequest"],
          });
        }
      })
      .optional(),
    retry: z
      .strictObject({
        codes: z
          .array(z.number().int().min(400).max(599, { error: "retry codes must be 400-599" }))
          .optional(),
        attempts: z.number().int().min(0).optional(),
        backoff: gwDuration.optional(),
      })
      .optional(),
    sessionPersistence: sessionPersistence.optional(),
  })
  .superRefine((r, ctx) => {
    const redirectAt = (r.filters ?? []).findIndex((f) => f.type === "RequestRedirect");
    if (redirectAt >= 0 && (r.backendRefs?.length ?? 0) > 0) {
      ctx.addIssue({
        code: "custom",
        message: "a RequestRedirect filter cannot be used together with backendRefs",
        path: ["filters", redirectAt],
      });
    }
    // ReplacePrefixMatch rewrites "the prefix that matched": there must be exactly one, and a prefix.
    const prefixReplace =
      usesPrefixReplace(r.filters) || (r.backendRefs ?? []).some((b) => usesPrefixReplace(b.filters));
    if (prefixReplace && (r.matches.length !== 1 || r.matches[0]?.path.type !== "PathPrefix")) {
      ctx.addIssue({
        code: "custom",
        message: "ReplacePrefixMatch needs exactly one match, with a PathPrefix path",
        path: ["matches"],
      });
    }
  });
export type HTTPRouteRule = z.infer<typeof httpRouteRule>;

export const httpRouteSpec = z
  .strictObject({
    ...commonRouteFields,
    hostnames: z.array(hostname).max(16).optional(),
    rules: z
      .array(httpRouteRule)
      .min(1)
      .max(16)
      .default([{ matches: [{ path: DEFAULT_PATH }] }]),
  })
  .superRefine((s, ctx) => {
    const total = s.rules.reduce((n, r) => n + r.matches.length, 0);
    if (total > 128)
      ctx.addIssue({
        code: "custom",
        message: `at most 128 matches across all rules (found ${total})`,
        path: ["rules"],
      });
  });
export type HTTPRouteSpec = z.infer<typeof httpRouteSpec>;
