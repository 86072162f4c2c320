// DestinationRule (networking.istio.io): traffic policy for a host and its subsets — load
// balancing, connection pools, outlier detection, client TLS — with istiod's validation rules.
import { z } from "zod";
import {
  addMissing,
  checkUnique,
  duration,
  durationMs,
  isIpAddress,
  labels,
  workloadSelector,
} from "../common.js";
import {
  exportTo,
  fqdnProblem,
  istioDuration,
  istioLabel,
  istioPort,
  uint32,
  wildcardHostProblem,
} from "./shared.js";
import { loadBalancer } from "./load-balancer.js";

const nonNegative = (what: string) =>
  z
    .number()
    .int({ error: `${what} must be an integer` })
    .min(0, { error: `${what} must be non-negative` })
    .max(2147483647);
const percentInt = z
  .number()
  .int()
  .min(0, { error: "percentage must be 0-100" })
  .max(100, { error: "percentage must be 0-100" });

export const connectionPool = z
  .strictObject({
    tcp: z
      .strictObject({
        maxConnections: nonNegative("maxConnections").optional(),
        connectTimeout: istioDuration.optional(),
        tcpKeepalive: z
          .strictObject({
            probes: uint32.optional(),
            time: istioDuration.optional(),
            interval: istioDuration.optional(),
          })
          .optional(),
        maxConnectionDuration: istioDuration.optional(),
        // "0s" turns the idle timeout off, so it is exempt from the 1ms minimum.
        idleTimeout: duration
          .refine((d) => durationMs(d) === 0 || durationMs(d) >= 1, {
            message: "idleTimeout must be 0s or at least 1ms",
          })
          .optional(),
      })
      .optional(),
    http: z
      .strictObject({
        http1MaxPendingRequests: nonNegative("http1MaxPendingRequests").optional(),
        http2MaxRequests: nonNegative("http2MaxRequests").optional(),
        maxRequestsPerConnection: nonNegative("maxRequestsPerConnection").optional(),
        maxRetries: nonNegative("maxRetries").optional(),
        idleTimeout: istioDuration.optional(),
        h2UpgradePolicy: z.enum(["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]).optional(),
        useClientProtocol: z.boolean().optional(),
        maxConcurrentStreams: nonNegative("maxConcurrentStreams").optional(),
        http2KeepAlive: z
          .strictObject({ interval: istioDuration.optional(), timeout: istioDuration.optional() })
          .superRefine((k, ctx) => {
            if (k.interval === undefined) addMissing(ctx, ["interval"], "http2KeepAlive needs interval");
            if (k.timeout === undefined) addMissing(ctx, ["timeout"], "http2KeepAlive needs timeout");
          })
          .optional(),
      })
      .superRefine((h, ctx) => {
        if (h.h2UpgradePolicy === "UPGRADE" && h.useClientProtocol) {
          ctx.addIssue({
            code: "custom",
            message: "useClientProtocol must not be true when h2UpgradePolicy is UPGRADE",
            path: ["useClientProtocol"],
          });
        }
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    if (!c.tcp && !c.http)
      ctx.addIssue({ code: "custom", message: "connectionPool must set tcp and/or http" });
  });

export const outlierDetection = z
  .strictObject({
    consecutiveErrors: z.number().int().optional(),
    splitExternalLocalOriginErrors: z.boolean().optional(),
    consecutiveLocalOriginFailures: uint32.optional(),
    consecutiveGatewayErrors: uint32.optional(),
    consecutive5xxErrors: uint32.optional(),
    interval: istioDuration.optional(),
    baseEjectionTime: istioDuration.optional(),
    maxEjectionPercent: percentInt.optional(),
    minHealthPercent: percentInt.optional(),
    outlierDetectionHttpErrorCodes: z
      .array(z.number().int().min(100).max(599, { error: "HTTP status codes are 100-599" }))
      .optional(),
  })
  .superRefine((o, ctx) => {
    if (!o.splitExternalLocalOriginErrors && (o.consecutiveLocalOriginFailures ?? 0) > 0) {
      ctx.addIssue({
        code: "custom",
        message: "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true",
        path: ["consecutiveLocalOriginFailures"],
      });
    }
  });

export const clientTls = z
  .strictObject({
    mode: z.enum(["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]).default("DISABLE"),
    clientCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
    credentialName: z.string().optional(),
    subjectAltNames: z.array(z.string()).optional(),
    sni: z.string().optional(),
    insecureSkipVerify: z.boolean().optional(),
    caCrl: z.string().optional(),
  })
  .superRefine((t, ctx) => {
    if (t.insecureSkipVerify) {
      if (t.mode === "SIMPLE" && (t.caCertificates || t.credentialName || t.subjectAltNames)) {
        ctx.addIssue({
          code: "custom",
          message:
            "insecureSkipVerify cannot be combined with caCertificates, credentialName or subjectAltNames",
          path: ["insecureSkipVerify"],
        });
      }
      if (t.mode === "MUTUAL" && (t.caCertificates || t.subjectAltNames)) {
        ctx.addIssue({
          code: "custom",
          message: "insecureSkipVerify cannot be combined with caCertificates or subjectAltNames",
          path: ["insecureSkipVerify"],
        });
      }
    }
    if ((t.mode === "SIMPLE" || t.mode === "MUTUAL") && t.credentialName) {
      const at = (["clientCertificate", "caCertificates", "privateKey", "caCrl"] as const).find((f) => t[f]);
      if (at)
        ctx.addIssue({
          code: "custom",
          message: `${at} cannot be set together with credentialName`,
          path: [at],
        });
      return;
    }
    if (t.mode === "MUTUAL") {
      if (!t.clientCertificate)
        addMissing(ctx, ["clientCertificate"], "mode MUTUAL needs clientCertificate (or credentialName)");
      if (!t.privateKey) addMissing(ctx, ["privateKey"], "mode MUTUAL needs privateKey (or credentialName)");
    }
  });

const tunnel = z
  .strictObject({
    protocol: z.enum(["CONNECT", "POST"]).default("CONNECT"),
    targetHost: z.string(),
    targetPort: istioPort,
  })
  .superRefine((t, ctx) => {
    if (fqdnProblem(t.targetHost) && !isIpAddress(t.targetHost)) {
      ctx.addIssue({
        code: "custom",
        message: `targetHost "${t.targetHost}" must be a DNS name or an IP address`,
        path: ["targetHost"],
      });
    }
  });

const portPolicyFields = {
  loadBalancer: loadBalancer.optional(),
  connectionPool: connectionPool.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: clientTls.optional(),
};

const portTrafficPolicy = z
  .strictObject({ port: z.strictObject({ number: istioPort }).optional(), ...portPolicyFields })
  .superRefine((p, ctx) => {
    if (!p.port) addMissing(ctx, ["port"], "a port-level policy needs port.number");
    if (!p.loadBalancer && !p.connectionPool && !p.outlierDetection && !p.tls) {
      ctx.addIssue({
        code: "custom",
        message: "a port-level policy must set loadBalancer, connectionPool, outlierDetection or tls",
      });
    }
  });

export const trafficPolicy = z
  .strictObject({
    ...portPolicyFields,
    portLevelSettings: z.array(portTrafficPolicy).optional(),
    tunnel: tunnel.optional(),
    proxyProtocol: z.strictObject({ version: z.enum(["V1", "V2"]).default("V1") }).optional(),
    retryBudget: z
      .strictObject({
        percent: z.number().min(0).max(100, { error: "percent must be 0-100" }).optional(),
        minRetryConcurrency: uint32.optional(),
        budgetInterval: istioDuration.optional(),
      })
      .optional(),
  })
  .superRefine((t, ctx) => {
    if (Object.values(t).every((v) => v === undefined))
      ctx.addIssue({ code: "custom", message: "trafficPolicy must set at least one field" });
    if (t.tunnel && t.proxyProtocol)
      ctx.addIssue({
        code: "custom",
        message: "tunnel and proxyProtocol cannot both be set",
        path: ["proxyProtocol"],
      });
  });
export type TrafficPolicy = z.infer<typeof trafficPolicy>;

export const subset = z.strictObject({
  name: istioLabel("subset name"),
  labels: labels.optional(),
  trafficPolicy: trafficPolicy.optional(),
});
export type Subset = z.infer<typeof subset>;

export const destinationRuleSpec = z
  .strictObject({
    host: z.string(),
    trafficPolicy: trafficPolicy.optional(),
    subsets: z.array(subset).optional(),
    exportTo: exportTo(false).optional(),
    workloadSelector: workloadSelector.optional(),
  })
  .superRefine((dr, ctx) => {
    const problem = wildcardHostProblem(dr.host);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["host"] });
    checkUnique(
      ctx,
      dr.subsets,
      (s) => s.name,
      (i) => ["subsets", i, "name"],
      "subset name",
    );
    // A selector-scoped rule only makes sense in its own namespace.
    if (
      dr.workloadSelector &&
      dr.exportTo &&
      (dr.exportTo.length > 1 || dr.exportTo.some((e) => e === "*"))
    ) {
      ctx.addIssue({
        code: "custom",
        message: "a DestinationRule with workloadSelector cannot be exported beyond its namespace",
        path: ["exportTo"],
      });
    }
  });
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpec>;
