// GRPCRoute (gateway.networking.k8s.io): routing by gRPC service/method and headers, with the
// CRD's defaults and CEL rules.
import { z } from "zod";
import { checkUnique, re2Problem } from "../common.js";
import {
  backendRef,
  checkFilterRepeats,
  checkFilterUnion,
  commonRouteFields,
  headerFilter,
  headerName,
  hostname,
  localObjectReference,
  requestMirror,
  sectionName,
  sessionPersistence,
} from "./shared.js";

const SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

export const grpcMethodMatch = z
  .strictObject({
    type: z.enum(["Exact", "RegularExpression"]).default("Exact"),
    service: z.string().max(1024).optional(),
    method: z.string().max(1024).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.service === undefined && m.method === undefined)
      ctx.addIssue({ code: "custom", message: "set service, method or both" });
    for (const field of ["service", "method"] as const) {
      const v = m[field];
      if (v === undefined) continue;
      const problem =
        m.type === "RegularExpression"
          ? re2Problem(v)
          : (field === "service" ? SERVICE : METHOD).test(v)
            ? undefined
            : field === "service"
              ? "expected a fully-qualified service name such as helloworld.Greeter"
              : "expected a method name (letters, digits, '_')";
      if (problem) ctx.addIssue({ code: "custom", message: `"${v}": ${problem}`, path: [field] });
    }
  });

const grpcHeaderMatch = z
  .strictObject({
    type: z.enum(["Exact", "RegularExpression"]).default("Exact"),
    name: headerName,
    value: z.string().min(1, { error: "value must not be empty" }).max(4096),
  })
  .superRefine((m, ctx) => {
    const problem = m.type === "RegularExpression" ? re2Problem(m.value) : undefined;
    if (problem) ctx.addIssue({ code: "custom", message: `"${m.value}": ${problem}`, path: ["value"] });
  });

export const grpcRouteMatch = z
  .strictObject({
    method: grpcMethodMatch.optional(),
    headers: z.array(grpcHeaderMatch).max(16).optional(),
  })
  .superRefine((m, ctx) =>
    checkUnique(
      ctx,
      m.headers,
      (h) => h.name,
      (i) => ["headers", i, "name"],
      "header match",
    ),
  );
export type GRPCRouteMatch = z.infer<typeof grpcRouteMatch>;

const GRPC_FILTER_CONFIG = {
  RequestHeaderModifier: "requestHeaderModifier",
  ResponseHeaderModifier: "responseHeaderModifier",
  RequestMirror: "requestMirror",
  ExtensionRef: "extensionRef",
} as const;

export const grpcRouteFilter = z
  .strictObject({
    type: z.enum(["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"]),
    requestHeaderModifier: headerFilter.optional(),
    responseHeaderModifier: headerFilter.optional(),
    requestMirror: requestMirror.optional(),
    extensionRef: localObjectReference.optional(),
  })
  .superRefine((f, ctx) => checkFilterUnion(f, GRPC_FILTER_CONFIG, ctx));

const filterList = z
  .array(grpcRouteFilter)
  .max(16)
  .superRefine((filters, ctx) =>
    checkFilterRepeats(filters, ["RequestHeaderModifier", "ResponseHeaderModifier"], ctx),
  );

export const grpcRouteRule = z.strictObject({
  name: sectionName.optional(),
  matches: z.array(grpcRouteMatch).max(64).optional(),
  filters: filterList.optional(),
  backendRefs: z.array(backendRef(filterList)).max(16).optional(),
  sessionPersistence: sessionPersistence.optional(),
});
export type GRPCRouteRule = z.infer<typeof grpcRouteRule>;

export const grpcRouteSpec = z
  .strictObject({
    ...commonRouteFields,
    hostnames: z.array(hostname).max(16).optional(),
    rules: z.array(grpcRouteRule).max(16).optional(),
  })
  .superRefine((s, ctx) => {
    const total = (s.rules ?? []).reduce((n, r) => n + (r.matches?.length ?? 0), 0);
    if (total > 128)
      ctx.addIssue({
        code: "custom",
        message: `at most 128 matches across all rules (found ${total})`,
        path: ["rules"],
      });
  });
export type GRPCRouteSpec = z.infer<typeof grpcRouteSpec>;
