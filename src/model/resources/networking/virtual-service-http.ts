// The HTTP part of a VirtualService: match requests, weighted destinations, redirect, direct
// response, rewrite, retries, fault injection, mirroring and CORS, with istiod's checks.
import { z } from "zod";
import { addMissing, labels, re2Problem } from "../common.js";
import {
  destination,
  gatewayNames,
  headers,
  istioDuration,
  istioPort,
  percent,
  stringMatch,
  uint32,
} from "./shared.js";

const TCHAR_NAME = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const PSEUDO_HEADERS = new Set([":method", ":scheme", ":authority", ":path", ":status"]);
export const isClaimKey = (k: string): boolean => /^@request\.auth\.claims(\.|\[)/.test(k);

const matchHeaderName = (name: string): string | undefined => {
  if (name === "") return "header name cannot be empty";
  if (isClaimKey(name) || PSEUDO_HEADERS.has(name) || TCHAR_NAME.test(name)) return undefined;
  return `"${name}" is not a valid header name`;
};

function headerMatches(starRegex: boolean) {
  return z.record(z.string(), stringMatch("atMostOne", { starRegex })).superRefine((m, ctx) => {
    for (const name of Object.keys(m)) {
      const problem = matchHeaderName(name);
      if (problem) ctx.addIssue({ code: "custom", message: problem, path: [name] });
    }
  });
}

export const httpMatchRequest = z.strictObject({
  name: z.string().optional(),
  uri: stringMatch("exactlyOne", { emptyPrefix: true }).optional(),
  scheme: stringMatch("exactlyOne").optional(),
  method: stringMatch("exactlyOne").optional(),
  authority: stringMatch("exactlyOne").optional(),
  headers: headerMatches(false).optional(),
  port: istioPort.optional(),
  sourceLabels: labels.optional(),
  gateways: gatewayNames.optional(),
  queryParams: z.record(z.string(), stringMatch("atMostOne")).optional(),
  ignoreUriCase: z.boolean().optional(),
  // "*" in a withoutHeaders regex is not a regex: it means "header present".
  withoutHeaders: headerMatches(true).optional(),
  sourceNamespace: z
    .string()
    .regex(/^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, { error: "sourceNamespace must be a DNS label" })
    .optional(),
  statPrefix: z.string().optional(),
});
export type HTTPMatchRequest = z.infer<typeof httpMatchRequest>;

const weight = z
  .number()
  .int({ error: "weight must be an integer" })
  .min(0, { error: "weight must not be negative" })
  .max(2147483647);

export const httpRouteDestination = z.strictObject({
  destination,
  weight: weight.optional(),
  headers: headers.optional(),
});
export const routeDestination = z.strictObject({ destination, weight: weight.optional() });

/** More than one destination with all weights zero would send traffic nowhere. */
export function checkWeights(
  routes: { weight?: number | undefined }[] | undefined,
  ctx: z.RefinementCtx,
  path: PropertyKey[],
): void {
  if (routes && routes.length > 1 && routes.reduce((sum, r) => sum + (r.weight ?? 0), 0) === 0) {
    ctx.addIssue({
      code: "custom",
      message: "destination weights add up to 0; give at least one destination a weight",
      path,
    });
  }
}

const httpRedirect = z
  .strictObject({
    uri: z.string().optional(),
    authority: z.string().optional(),
    port: istioPort.optional(),
    derivePort: z.enum(["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"]).optional(),
    scheme: z.enum(["http", "https"], { error: 'redirect scheme must be "http" or "https"' }).optional(),
    redirectCode: z
      .number()
      .int()
      .min(300, { error: "redirectCode must be 3xx" })
      .max(399, { error: "redirectCode must be 3xx" })
      .default(301),
    prefixRewrite: z.string().optional(),
  })
  .superRefine((r, ctx) => {
    if (r.port !== undefined && r.derivePort !== undefined)
      ctx.addIssue({
        code: "custom",
        message: "only one of port or derivePort may be set",
        path: ["derivePort"],
      });
    if (r.uri && r.prefixRewrite)
      ctx.addIssue({
        code: "custom",
        message: "only one of uri or prefixRewrite may be set",
        path: ["prefixRewrite"],
      });
    if (
      !r.uri &&
      !r.prefixRewrite &&
      !r.authority &&
      r.port === undefined &&
      r.derivePort === undefined &&
      !r.scheme
    ) {
      ctx.addIssue({
        code: "custom",
        message: "redirect must set uri, prefixRewrite, authority, scheme, port or derivePort",
      });
    }
  });

const MB = 1024 * 1024;
const httpDirectResponse = z.strictObject({
  status: z
    .number()
    .int()
    .min(200, { error: "status must be 200-600" })
    .max(600, { error: "status must be 200-600" }),
  body: z
    .strictObject({ string: z.string().optional(), bytes: z.string().optional() })
    .superRefine((b, ctx) => {
      if (b.string !== undefined && b.bytes !== undefined)
        ctx.addIssue({ code: "custom", message: "only one of string or bytes may be set", path: ["bytes"] });
      if (b.bytes !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(b.bytes))
        ctx.addIssue({ code: "custom", message: "bytes must be base64", path: ["bytes"] });
      if ((b.string ?? b.bytes ?? "").length > MB)
        ctx.addIssue({ code: "custom", message: "a direct response body must be under 1MB" });
    })
    .optional(),
});

const httpRewrite = z
  .strictObject({
    uri: z.string().optional(),
    authority: z.string().optional(),
    uriRegexRewrite: z
      .strictObject({ match: z.string().optional(), rewrite: z.string().optional() })
      .superRefine((r, ctx) => {
        if (!r.match) addMissing(ctx, ["match"], "uriRegexRewrite needs match and rewrite");
        else {
          const problem = re2Problem(r.match);
          if (problem) ctx.addIssue({ code: "custom", message: `"${r.match}": ${problem}`, path: ["match"] });
        }
        if (!r.rewrite) addMissing(ctx, ["rewrite"], "uriRegexRewrite needs match and rewrite");
      })
      .optional(),
  })
  .superRefine((r, ctx) => {
    if (r.uri && r.uriRegexRewrite)
      ctx.addIssue({
        code: "custom",
        message: "only one of uri or uriRegexRewrite may be set",
        path: ["uriRegexRewrite"],
      });
    if (!r.uri && !r.uriRegexRewrite && !r.authority)
      ctx.addIssue({ code: "custom", message: "rewrite must set uri, uriRegexRewrite or authority" });
  });

const RETRY_ON = new Set([
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "envoy-ratelimited",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
]);

const httpRetry = z
  .strictObject({
    attempts: z.number().int().min(0, { error: "attempts cannot be negative" }).optional(),
    perTryTimeout: istioDuration.optional(),
    retryOn: z.string().optional(),
    retryRemoteLocalities: z.boolean().optional(),
    retryIgnorePreviousHosts: z.boolean().optional(),
    backoff: istioDuration.optional(),
  })
  .superRefine((r, ctx) => {
    if (
      (r.attempts ?? 0) === 0 &&
      (r.perTryTimeout !== undefined || r.retryOn || r.retryRemoteLocalities !== undefined)
    ) {
      ctx.addIssue({
        code: "custom",
        message: "retry settings need attempts > 0 (0 disables retries)",
        path: ["attempts"],
      });
    }
    for (const policy of (r.retryOn ?? "").split(",").filter((p) => p !== "")) {
      if (
        !RETRY_ON.has(policy) &&
        !(/^\d{3}$/.test(policy) && Number(policy) >= 100 && Number(policy) <= 599)
      ) {
        ctx.addIssue({
          code: "custom",
          message: `"${policy}" is not a retryOn policy or an HTTP status code`,
          path: ["retryOn"],
        });
      }
    }
  });

const GRPC_STATUS = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

const faultInjection = z
  .strictObject({
    delay: z
      .strictObject({
        percent: z.number().int().min(0).max(100, { error: "percent must be 0-100" }).optional(),
        fixedDelay: istioDuration.optional(),
        exponentialDelay: istioDuration.optional(),
        percentage: percent.optional(),
      })
      .superRefine((d, ctx) => {
        if (d.fixedDelay !== undefined && d.exponentialDelay !== undefined) {
          ctx.addIssue({
            code: "custom",
            message: "only one of fixedDelay or exponentialDelay may be set",
            path: ["exponentialDelay"],
          });
        }
        if (d.exponentialDelay !== undefined)
          ctx.addIssue({
            code: "custom",
            message: "exponentialDelay is not supported yet",
            path: ["exponentialDelay"],
          });
      })
      .optional(),
    abort: z
      .strictObject({
        httpStatus: z
          .number()
          .int()
          .min(200, { error: "httpStatus must be 200-600" })
          .max(600, { error: "httpStatus must be 200-600" })
          .optional(),
        grpcStatus: z.enum(GRPC_STATUS).optional(),
        http2Error: z.string().optional(),
        percentage: percent.optional(),
      })
      .superRefine((a, ctx) => {
        const set = (["httpStatus", "grpcStatus", "http2Error"] as const).filter((k) => a[k] !== undefined);
        if (set.length > 1)
          ctx.addIssue({
            code: "custom",
            message: "only one of httpStatus, grpcStatus or http2Error may be set",
            path: [set[1] ?? ""],
          });
        if (a.http2Error !== undefined)
          ctx.addIssue({
            code: "custom",
            message: "http2Error abort is not supported yet",
            path: ["http2Error"],
          });
      })
      .optional(),
  })
  .superRefine((f, ctx) => {
    if (!f.delay && !f.abort) ctx.addIssue({ code: "custom", message: "fault must set delay and/or abort" });
  });

const CORS_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "*",
] as const;
const corsHeader = z
  .string()
  .refine((h) => h === "*" || TCHAR_NAME.test(h), { message: "expected a header name or *" });

const corsPolicy = z.strictObject({
  allowOrigin: z.array(z.string()).optional(),
  allowOrigins: z
    .array(
      stringMatch("exactlyOne").superRefine((m, ctx) => {
        if ((m.exact ?? m.prefix ?? m.regex) === "")
          ctx.addIssue({ code: "custom", message: "an allowed origin must not be empty" });
      }),
    )
    .optional(),
  allowMethods: z.array(z.enum(CORS_METHODS)).optional(),
  allowHeaders: z.array(corsHeader).optional(),
  exposeHeaders: z.array(corsHeader).optional(),
  maxAge: istioDuration
    .refine((d) => !/\./.test(d) && !/ms|us|µs|ns/.test(d), { message: "maxAge is accurate only to seconds" })
    .optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(["UNSPECIFIED", "FORWARD", "IGNORE"]).optional(),
});

const mirrorPolicy = z.strictObject({ destination, percentage: percent.optional() });

export const httpRoute = z.strictObject({
  name: z.string().optional(),
  match: z.array(httpMatchRequest).optional(),
  route: z.array(httpRouteDestination).optional(),
  redirect: httpRedirect.optional(),
  directResponse: httpDirectResponse.optional(),
  delegate: z.strictObject({ name: z.string().optional(), namespace: z.string().optional() }).optional(),
  rewrite: httpRewrite.optional(),
  timeout: istioDuration.optional(),
  retries: httpRetry.optional(),
  fault: faultInjection.optional(),
  mirror: destination.optional(),
  mirrors: z.array(mirrorPolicy).optional(),
  mirrorPercent: uint32.max(100, { error: "mirrorPercent must be at most 100" }).optional(),
  mirrorPercentage: percent.optional(),
  corsPolicy: corsPolicy.optional(),
  headers: headers.optional(),
});
export type HTTPRoute = z.infer<typeof httpRoute>;
