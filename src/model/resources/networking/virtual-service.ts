// VirtualService (networking.istio.io): HTTP, TLS and TCP routing for a set of hosts, with the
// checks istiod applies (exclusive actions, RE2 regexes, weights, delegation, host rules).
import { z } from "zod";
import { addMissing, ipOrCidr, labels } from "../common.js";
import {
  authorityRewrites,
  exportTo,
  gatewayNames,
  hostOrIpProblem,
  hostsOverlap,
  hostSubsetOf,
  istioPort,
  wildcardHostProblem,
} from "./shared.js";
import {
  checkWeights,
  isClaimKey,
  routeDestination,
  type HTTPRoute,
  httpRoute,
} from "./virtual-service-http.js";

/** istiod's rules for one HTTP route; `delegateVs` when the VirtualService itself is a delegate (no hosts). */
function checkHttpRoute(r: HTTPRoute, delegateVs: boolean, ctx: z.RefinementCtx, at: PropertyKey[]): void {
  const issue = (path: PropertyKey[], message: string): void =>
    ctx.addIssue({ code: "custom", message, path: [...at, ...path] });
  const hasRoute = (r.route?.length ?? 0) > 0;
  if (!delegateVs && r.delegate) {
    // A root route only hands off to its delegate.
    if (r.redirect) issue(["redirect"], "a route with delegate must not set redirect");
    if (r.route) issue(["route"], "a route with delegate must not set route");
  } else {
    if (delegateVs && r.delegate) issue(["delegate"], "a delegate VirtualService cannot delegate again");
    if (r.redirect) {
      if (hasRoute) issue(["redirect"], "a route cannot have both route and redirect");
      if (r.fault) issue(["fault"], "a route cannot have both fault and redirect");
      if (r.rewrite) issue(["rewrite"], "a route cannot have both rewrite and redirect");
      if (r.directResponse) issue(["directResponse"], "a route cannot have both directResponse and redirect");
    } else if (r.directResponse) {
      if (hasRoute) issue(["directResponse"], "a route cannot have both route and directResponse");
      if (r.fault) issue(["fault"], "a route cannot have both fault and directResponse");
      if (r.rewrite) issue(["rewrite"], "a route cannot have both rewrite and directResponse");
    } else if (!hasRoute) {
      addMissing(ctx, [...at, "route"], "an HTTP route needs route, redirect or directResponse");
    }
  }
  if (r.mirror && r.mirrors) issue(["mirrors"], "only one of mirror or mirrors may be set");
  if (r.redirect?.prefixRewrite) {
    const at2 = (r.match ?? []).findIndex((m) => m.uri !== undefined && m.uri.prefix === undefined);
    if (at2 >= 0)
      issue(["match", at2, "uri"], "redirect prefixRewrite needs every uri match to be a prefix match");
  }
  if ((r.rewrite?.authority ? 1 : 0) + authorityRewrites(r.headers).length > 1) {
    issue(
      ["headers"],
      "the authority may be rewritten in only one place (rewrite.authority or a Host/:authority header)",
    );
  }
  checkWeights(r.route, ctx, [...at, "route"]);
}

const l4Match = z.strictObject({
  destinationSubnets: z.array(ipOrCidr).optional(),
  port: istioPort.optional(),
  sourceSubnet: ipOrCidr.optional(),
  sourceLabels: labels.optional(),
  gateways: gatewayNames.optional(),
  sourceNamespace: z.string().optional(),
});

const tlsMatch = z.strictObject({
  sniHosts: z.array(z.string()).min(1, { error: "a TLS match needs at least one sniHost" }),
  destinationSubnets: z.array(ipOrCidr).optional(),
  port: istioPort.optional(),
  sourceLabels: labels.optional(),
  gateways: gatewayNames.optional(),
  sourceNamespace: z.string().optional(),
});

export const tcpRoute = z.strictObject({
  match: z.array(l4Match).optional(),
  route: z.array(routeDestination).min(1, { error: "a TCP route needs at least one destination" }),
});
export type TCPRoute = z.infer<typeof tcpRoute>;

export const tlsRoute = z.strictObject({
  match: z.array(tlsMatch).min(1, { error: "a TLS route needs at least one match" }),
  route: z.array(routeDestination).min(1, { error: "a TLS route needs at least one destination" }),
});
export type TLSRoute = z.infer<typeof tlsRoute>;

export const virtualServiceSpec = z
  .strictObject({
    hosts: z.array(z.string()).optional(),
    gateways: gatewayNames.optional(),
    http: z.array(httpRoute).optional(),
    tls: z.array(tlsRoute).optional(),
    tcp: z.array(tcpRoute).optional(),
    exportTo: exportTo(false).optional(),
  })
  .superRefine((vs, ctx) => {
    const hosts = vs.hosts ?? [];
    const delegateVs = hosts.length === 0;
    if (delegateVs) {
      for (const f of ["gateways", "tls", "tcp"] as const) {
        if ((vs[f]?.length ?? 0) > 0)
          ctx.addIssue({
            code: "custom",
            message: `a delegate VirtualService (no hosts) cannot set ${f}`,
            path: [f],
          });
      }
    }
    const gateways = vs.gateways ?? [];
    const appliesToMesh = gateways.length === 0 || gateways.includes("mesh");
    let hostsValid = true;
    hosts.forEach((h, i) => {
      const problem =
        hostOrIpProblem(h) ??
        (appliesToMesh && h === "*"
          ? 'host "*" is not allowed for VirtualServices bound to the mesh'
          : undefined);
      if (problem) {
        hostsValid = false;
        ctx.addIssue({ code: "custom", message: problem, path: ["hosts", i] });
      }
    });
    if (hostsValid) {
      hosts.forEach((h, j) => {
        const i = hosts.findIndex((other, k) => k < j && hostsOverlap(other, h));
        if (i >= 0)
          ctx.addIssue({
            code: "custom",
            message: `host "${h}" duplicates or overlaps "${hosts[i] ?? ""}"`,
            path: ["hosts", j],
          });
      });
    }
    if (!vs.http?.length && !vs.tcp?.length && !vs.tls?.length) {
      addMissing(ctx, ["http"], "a VirtualService needs http, tcp or tls routes");
    }
    vs.http?.forEach((r, i) => {
      checkHttpRoute(r, delegateVs, ctx, ["http", i]);
      if (!appliesToMesh) return;
      // JWT claim routing happens at gateways only; the mesh has no validated token to route on.
      r.match?.forEach((m, j) => {
        for (const field of ["headers", "withoutHeaders"] as const) {
          for (const key of Object.keys(m[field] ?? {})) {
            if (isClaimKey(key)) {
              ctx.addIssue({
                code: "custom",
                message: "JWT claim based routing is only supported on gateways",
                path: ["http", i, "match", j, field, key],
              });
            }
          }
        }
      });
    });
    vs.tls?.forEach((r, i) => {
      r.match.forEach((m, j) =>
        m.sniHosts.forEach((sni, k) => {
          const problem = wildcardHostProblem(sni);
          if (problem) {
            // An IP is against the SNI spec but Istio tolerates it.
            if (hostOrIpProblem(sni))
              ctx.addIssue({ code: "custom", message: problem, path: ["tls", i, "match", j, "sniHosts", k] });
          } else if (!hosts.some((h) => hostSubsetOf(sni, h))) {
            ctx.addIssue({
              code: "custom",
              message: `SNI host "${sni}" is not covered by any of the VirtualService hosts`,
              path: ["tls", i, "match", j, "sniHosts", k],
            });
          }
        }),
      );
      checkWeights(r.route, ctx, ["tls", i, "route"]);
    });
    vs.tcp?.forEach((r, i) => checkWeights(r.route, ctx, ["tcp", i, "route"]));
  });
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpec>;
