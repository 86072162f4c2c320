// ServiceEntry and WorkloadEntry (networking.istio.io): services and workloads outside Kubernetes,
// with the checks istiod applies (resolution modes, endpoints, addresses, ports).
import { z } from "zod";
import { addMissing, checkUnique, ipOrCidr, isCidr, isIpAddress, labels } from "../common.js";
import {
  exportTo,
  fqdnProblem,
  isIstioDnsLabel,
  istioLabel,
  istioPort,
  uint32,
  wildcardHostProblem,
} from "./shared.js";

const UNIX_PREFIX = "unix://";

// Protocol names Istio understands (matched case-insensitively); "" means "sniff".
const PROTOCOLS = [
  "HTTP",
  "HTTPS",
  "GRPC",
  "GRPC-WEB",
  "HTTP2",
  "HTTP_PROXY",
  "TCP",
  "TLS",
  "UDP",
  "MONGO",
  "REDIS",
  "MYSQL",
];
const isHttpProtocol = (p: string | undefined): boolean =>
  ["HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB"].includes((p ?? "").toUpperCase());
const isTlsProtocol = (p: string | undefined): boolean => ["HTTPS", "TLS"].includes((p ?? "").toUpperCase());

const endpointPorts = z.record(z.string(), istioPort).superRefine((ports, ctx) => {
  for (const name of Object.keys(ports)) {
    if (!isIstioDnsLabel(name))
      ctx.addIssue({ code: "custom", message: `port name "${name}" must be a DNS label`, path: [name] });
  }
});

/** A unix domain socket address: an absolute path or an abstract socket ('@'), never a directory. */
function unixAddressProblem(addr: string): string | undefined {
  const path = addr.slice(UNIX_PREFIX.length);
  if (!path.startsWith("/") && !path.startsWith("@"))
    return "a unix address must be an absolute path or an abstract socket (@name)";
  if (path.endsWith("/")) return "a unix address may not be a directory";
  return undefined;
}

const workloadEntryFields = {
  address: z.string().max(256).optional(),
  ports: endpointPorts.optional(),
  labels: labels.optional(),
  network: z.string().max(2048).optional(),
  locality: z.string().max(2048).optional(),
  weight: uint32.optional(),
  serviceAccount: z.string().max(253).optional(),
};

type Report = (path: PropertyKey[], message: string, missing?: boolean) => void;

function reporter(ctx: z.RefinementCtx, head: PropertyKey[] = []): Report {
  return (path, message, missing) =>
    missing
      ? addMissing(ctx, [...head, ...path], message)
      : ctx.addIssue({ code: "custom", message, path: [...head, ...path] });
}

/** Checks shared by standalone WorkloadEntries and ServiceEntry endpoints. */
function checkWorkloadEntry(we: ServiceEntryEndpoint, report: Report, allowFqdn: boolean): void {
  const addr = we.address ?? "";
  if (addr === "") {
    if (!we.network)
      report(["address"], "address is required (or network, for a workload behind a network gateway)", true);
    return;
  }
  if (addr.startsWith(UNIX_PREFIX)) {
    const problem = unixAddressProblem(addr);
    if (problem) report(["address"], problem);
    if (we.ports && Object.keys(we.ports).length > 0)
      report(["ports"], "a unix address may not include ports");
  } else if (!isIpAddress(addr)) {
    if (!allowFqdn) report(["address"], `address "${addr}" must be an IP address for resolution STATIC`);
    else if (fqdnProblem(addr)) report(["address"], `address "${addr}" must be an IP address or a DNS name`);
  }
}

export const workloadEntrySpec = z
  .strictObject(workloadEntryFields)
  .superRefine((we, ctx) => checkWorkloadEntry(we, reporter(ctx), true));
export type WorkloadEntrySpec = z.infer<typeof workloadEntrySpec>;

/** An endpoint inside a ServiceEntry: a WorkloadEntry whose checks depend on the resolution mode. */
export const serviceEntryEndpoint = z.strictObject(workloadEntryFields);
export type ServiceEntryEndpoint = z.infer<typeof serviceEntryEndpoint>;

export const serviceEntryPort = z.strictObject({
  number: istioPort,
  protocol: z
    .string()
    .refine((p) => p === "" || PROTOCOLS.includes(p.toUpperCase()), {
      message: `unsupported protocol; expected one of ${PROTOCOLS.join(", ")}`,
    })
    .optional(),
  name: istioLabel("port name"),
  targetPort: istioPort.optional(),
});
export type ServiceEntryPort = z.infer<typeof serviceEntryPort>;

export const serviceEntrySpec = z
  .strictObject({
    hosts: z.array(z.string()).min(1, { error: "a ServiceEntry needs at least one host" }).max(256),
    addresses: z
      .array(ipOrCidr.refine((s) => s.length <= 64, { message: "address is too long (max 64)" }))
      .max(256)
      .optional(),
    ports: z.array(serviceEntryPort).max(256).optional(),
    location: z.enum(["MESH_EXTERNAL", "MESH_INTERNAL"]).default("MESH_EXTERNAL"),
    resolution: z.enum(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"]).default("NONE"),
    endpoints: z.array(serviceEntryEndpoint).max(4096).optional(),
    // networking's own WorkloadSelector: `labels`, not the `matchLabels` of istio.type.v1beta1.
    workloadSelector: z.strictObject({ labels: labels.optional() }).optional(),
    exportTo: exportTo(true).optional(),
    subjectAltNames: z.array(z.string()).optional(),
  })
  .superRefine((se, ctx) => {
    se.hosts.forEach((h, i) => {
      const problem = h === "*" ? 'host "*" is not allowed in a ServiceEntry' : wildcardHostProblem(h);
      if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["hosts", i] });
    });
    if (se.workloadSelector && se.endpoints) {
      ctx.addIssue({
        code: "custom",
        message: "only one of workloadSelector or endpoints can be set",
        path: ["workloadSelector"],
      });
    }
    const cidrAt = (se.addresses ?? []).findIndex((a) => isCidr(a));
    if (cidrAt >= 0 && se.resolution !== "NONE" && se.resolution !== "STATIC") {
      ctx.addIssue({
        code: "custom",
        message: "CIDR addresses are allowed only for resolution NONE or STATIC",
        path: ["addresses", cidrAt],
      });
    }
    checkUnique(
      ctx,
      se.ports,
      (p) => p.name,
      (i) => ["ports", i, "name"],
      "port name",
    );
    checkUnique(
      ctx,
      se.ports,
      (p) => p.number,
      (i) => ["ports", i, "number"],
      "port number",
    );
    const portNames = new Set((se.ports ?? []).map((p) => p.name));
    const endpoints = se.endpoints ?? [];

    const checkEndpointPorts = (): void =>
      endpoints.forEach((ep, i) => {
        for (const name of Object.keys(ep.ports ?? {})) {
          if (!portNames.has(name)) {
            ctx.addIssue({
              code: "custom",
              message: `endpoint port "${name}" is not defined by the ServiceEntry's ports`,
              path: ["endpoints", i, "ports", name],
            });
          }
        }
      });
    const checkEndpoints = (allowFqdn: boolean): void =>
      endpoints.forEach((ep, i) => checkWorkloadEntry(ep, reporter(ctx, ["endpoints", i]), allowFqdn));

    switch (se.resolution) {
      case "NONE":
        if (endpoints.length > 0)
          ctx.addIssue({
            code: "custom",
            message: "resolution NONE cannot have endpoints",
            path: ["endpoints"],
          });
        break;
      case "STATIC":
        checkEndpoints(false);
        checkEndpointPorts();
        break;
      case "DNS":
      case "DNS_ROUND_ROBIN": {
        if (endpoints.length === 0) {
          const at = se.hosts.findIndex((h) => fqdnProblem(h) !== undefined);
          if (at >= 0) {
            ctx.addIssue({
              code: "custom",
              message: `resolution ${se.resolution} without endpoints needs fully-qualified hosts (no wildcards)`,
              path: ["hosts", at],
            });
          }
        }
        if (se.resolution === "DNS_ROUND_ROBIN" && endpoints.length > 1) {
          ctx.addIssue({
            code: "custom",
            message: "resolution DNS_ROUND_ROBIN allows at most one endpoint",
            path: ["endpoints"],
          });
        }
        checkEndpoints(true);
        checkEndpointPorts();
        break;
      }
      case "DYNAMIC_DNS":
        se.hosts.forEach((h, i) => {
          if (!h.startsWith("*"))
            ctx.addIssue({
              code: "custom",
              message: "resolution DYNAMIC_DNS needs wildcard hosts",
              path: ["hosts", i],
            });
        });
        if ((se.addresses?.length ?? 0) > 0)
          ctx.addIssue({
            code: "custom",
            message: "resolution DYNAMIC_DNS cannot have addresses",
            path: ["addresses"],
          });
        if (endpoints.length > 0)
          ctx.addIssue({
            code: "custom",
            message: "resolution DYNAMIC_DNS cannot have endpoints",
            path: ["endpoints"],
          });
        se.ports?.forEach((p, i) => {
          if (!["HTTP", "TLS", "GRPC", "HTTP2"].includes((p.protocol ?? "").toUpperCase())) {
            ctx.addIssue({
              code: "custom",
              message: "resolution DYNAMIC_DNS supports only HTTP, TLS, GRPC and HTTP2 ports",
              path: ["ports", i, "protocol"],
            });
          }
        });
        break;
    }
    // Plain TCP carries no host name, so several hosts on one TCP port cannot be told apart.
    if (se.resolution !== "NONE" && se.hosts.length > 1) {
      const at = (se.ports ?? []).findIndex((p) => !isHttpProtocol(p.protocol) && !isTlsProtocol(p.protocol));
      if (at >= 0) {
        ctx.addIssue({
          code: "custom",
          message: "several hosts need HTTP or TLS ports (plain TCP cannot tell the hosts apart)",
          path: ["ports", at, "protocol"],
        });
      }
    }
  });
export type ServiceEntrySpec = z.infer<typeof serviceEntrySpec>;
