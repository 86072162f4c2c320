// v1 Namespace, Pod and Service with Kubernetes' own defaults and validation rules. Pods accept
// every PodSpec field so real manifests apply unchanged; the mesh reads names, ports and identity.
import { z } from "zod";
import {
  addMissing,
  checkUnique,
  intOrString,
  ipAddress,
  ipOrCidr,
  isDns1123Label,
  isDns1123Subdomain,
  isIpAddress,
  labelKeyProblem,
  labels,
  portNumber,
} from "./common.js";

/** Kubernetes IANA_SVC_NAME: the form of container port names and named targetPorts. */
export function ianaSvcNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 15) return `port name "${name}" must be 1-15 characters`;
  if (!/^[-a-z0-9]+$/.test(name))
    return `port name "${name}" may contain only lowercase letters, digits and '-'`;
  if (!/[a-z]/.test(name)) return `port name "${name}" must contain at least one letter`;
  if (name.startsWith("-") || name.endsWith("-") || name.includes("--")) {
    return `port name "${name}" must not start or end with '-' or contain '--'`;
  }
  return undefined;
}

const protocol = z.enum(["TCP", "UDP", "SCTP"]);
const int = z.number().int();
const nonNegativeInt = int.min(0, { error: "expected a non-negative integer" });
const objects = z.array(z.record(z.string(), z.unknown()));
const object = z.record(z.string(), z.unknown());

function qualifiedName(what: string) {
  return z.string().superRefine((s, ctx) => {
    const problem = labelKeyProblem(s);
    if (problem) ctx.addIssue({ code: "custom", message: `${what}: ${problem.replace(/^label key/, "")}` });
  });
}

const dnsSubdomainName = (what: string) =>
  z.string().refine(isDns1123Subdomain, {
    message: `${what} must be a DNS-1123 subdomain (lowercase alphanumerics, '-' and '.')`,
  });

// ---------------------------------------------------------------------------------------------
// Namespace

export const namespaceSpec = z.strictObject({ finalizers: z.array(qualifiedName("finalizer")).optional() });
export type NamespaceSpec = z.infer<typeof namespaceSpec>;

// ---------------------------------------------------------------------------------------------
// Pod

export const containerPort = z.strictObject({
  containerPort: portNumber,
  name: z
    .string()
    .superRefine((s, ctx) => {
      const problem = ianaSvcNameProblem(s);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
  protocol: protocol.default("TCP"),
  hostPort: int.min(0).max(65535, { error: "expected a port number (integer 0-65535)" }).optional(),
  hostIP: ipAddress.optional(),
});
export type ContainerPort = z.infer<typeof containerPort>;

/** A container: name and ports are checked (the mesh reads them); the rest passes through as written. */
export const container = z
  .looseObject({
    name: z.string().refine(isDns1123Label, { message: "container name must be a DNS-1123 label" }),
    image: z.string().optional(),
    ports: z.array(containerPort).optional(),
  })
  .superRefine((c, ctx) => {
    checkUnique(
      ctx,
      c.ports,
      (p) => p.name,
      (i) => ["ports", i, "name"],
      "port name",
    );
    checkUnique(
      ctx,
      c.ports,
      (p) => `${p.containerPort}/${p.protocol}`,
      (i) => ["ports", i, "containerPort"],
      "containerPort/protocol",
    );
  });
export type Container = z.infer<typeof container>;

export const podSpec = z
  .strictObject({
    containers: z.array(container).optional(),
    initContainers: z.array(container).optional(),
    ephemeralContainers: objects.optional(),
    volumes: objects.optional(),
    restartPolicy: z.enum(["Always", "OnFailure", "Never"]).default("Always"),
    terminationGracePeriodSeconds: nonNegativeInt.default(30),
    activeDeadlineSeconds: int.min(1, { error: "expected a positive integer" }).optional(),
    dnsPolicy: z.enum(["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]).default("ClusterFirst"),
    nodeSelector: z.record(z.string(), z.string()).optional(),
    serviceAccountName: dnsSubdomainName("serviceAccountName").optional(),
    serviceAccount: dnsSubdomainName("serviceAccount").optional(),
    automountServiceAccountToken: z.boolean().optional(),
    nodeName: dnsSubdomainName("nodeName").optional(),
    hostNetwork: z.boolean().optional(),
    hostPID: z.boolean().optional(),
    hostIPC: z.boolean().optional(),
    shareProcessNamespace: z.boolean().optional(),
    securityContext: object.optional(),
    imagePullSecrets: objects.optional(),
    hostname: z.string().refine(isDns1123Label, { message: "hostname must be a DNS-1123 label" }).optional(),
    subdomain: z
      .string()
      .refine(isDns1123Label, { message: "subdomain must be a DNS-1123 label" })
      .optional(),
    affinity: object.optional(),
    schedulerName: z.string().default("default-scheduler"),
    tolerations: objects.optional(),
    hostAliases: objects.optional(),
    priorityClassName: z.string().optional(),
    priority: int.optional(),
    dnsConfig: object.optional(),
    readinessGates: objects.optional(),
    runtimeClassName: z.string().optional(),
    enableServiceLinks: z.boolean().optional(),
    preemptionPolicy: z.enum(["PreemptLowerPriority", "Never"]).optional(),
    overhead: z.record(z.string(), intOrString).optional(),
    topologySpreadConstraints: objects.optional(),
    setHostnameAsFQDN: z.boolean().optional(),
    os: z.strictObject({ name: z.enum(["linux", "windows"]) }).optional(),
    hostUsers: z.boolean().optional(),
    schedulingGates: objects.optional(),
    resourceClaims: objects.optional(),
    resources: object.optional(),
    hostnameOverride: z.string().optional(),
    schedulingGroup: object.optional(),
    evictionResponders: objects.optional(),
  })
  .superRefine((s, ctx) => {
    const all = [
      ...(s.containers ?? []).map((c, i) => ({ c, path: ["containers", i, "name"] })),
      ...(s.initContainers ?? []).map((c, i) => ({ c, path: ["initContainers", i, "name"] })),
    ];
    checkUnique(
      ctx,
      all,
      (e) => e.c.name,
      (i) => all[i]?.path ?? [],
      "container name",
    );
    if (
      s.serviceAccount !== undefined &&
      s.serviceAccountName !== undefined &&
      s.serviceAccount !== s.serviceAccountName
    ) {
      ctx.addIssue({
        code: "custom",
        message: `serviceAccount (deprecated) "${s.serviceAccount}" differs from serviceAccountName "${s.serviceAccountName}"`,
        path: ["serviceAccount"],
      });
    }
  })
  // Kubernetes copies the deprecated serviceAccount into serviceAccountName and the admission
  // controller fills in "default": the identity the mesh derives is always present.
  .transform(({ serviceAccountName, ...rest }) => ({
    ...rest,
    serviceAccountName: serviceAccountName ?? rest.serviceAccount ?? "default",
  }));
export type PodSpec = z.infer<typeof podSpec>;

/**
 * The part of a Pod's status the mesh reads: the addresses the network plugin assigned (the lab
 * writes them; in Kubernetes the kubelet does). Other status fields pass through untouched.
 */
export const podStatus = z
  .looseObject({
    podIP: ipAddress.optional(),
    podIPs: z.array(z.looseObject({ ip: ipAddress })).optional(),
  })
  .superRefine((s, ctx) => {
    const first = s.podIPs?.[0]?.ip;
    if (s.podIP !== undefined && first !== undefined && first !== s.podIP) {
      ctx.addIssue({
        code: "custom",
        message: `podIPs[0].ip "${first}" must equal podIP "${s.podIP}"`,
        path: ["podIPs", 0, "ip"],
      });
    }
  });
export type PodStatus = z.infer<typeof podStatus>;

/** A Pod's addresses, primary first, without duplicates. */
export function podAddresses(status: PodStatus | undefined): string[] {
  if (status === undefined) return [];
  const all = [
    ...(status.podIP !== undefined ? [status.podIP] : []),
    ...(status.podIPs ?? []).map((p) => p.ip),
  ];
  return [...new Set(all)];
}

// ---------------------------------------------------------------------------------------------
// Service

const SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] as const;

export const servicePort = z.strictObject({
  name: z.string().optional(),
  protocol: protocol.default("TCP"),
  appProtocol: qualifiedName("appProtocol").optional(),
  port: portNumber,
  targetPort: intOrString
    .superRefine((v, ctx) => {
      const problem =
        typeof v === "number"
          ? v >= 1 && v <= 65535
            ? undefined
            : "expected a port number (integer 1-65535)"
          : ianaSvcNameProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
  nodePort: portNumber.optional(),
});

const clientIPConfig = z.strictObject({
  clientIP: z
    .strictObject({
      timeoutSeconds: int.min(1).max(86400, { error: "expected seconds in 1-86400" }).default(10800),
    })
    .default({ timeoutSeconds: 10800 }),
});

const serviceSpecBase = z
  .strictObject({
    ports: z.array(servicePort).optional(),
    selector: labels.optional(),
    clusterIP: z.string().optional(),
    clusterIPs: z
      .array(z.string())
      .max(2, { error: "at most two clusterIPs (one per IP family)" })
      .optional(),
    type: z.enum(SERVICE_TYPES).default("ClusterIP"),
    externalIPs: z.array(ipAddress).optional(),
    sessionAffinity: z.enum(["None", "ClientIP"]).default("None"),
    loadBalancerIP: z.union([ipAddress, z.literal("")]).optional(),
    loadBalancerSourceRanges: z.array(ipOrCidr).optional(),
    externalName: z.string().optional(),
    externalTrafficPolicy: z.enum(["Cluster", "Local"]).optional(),
    healthCheckNodePort: portNumber.optional(),
    publishNotReadyAddresses: z.boolean().optional(),
    sessionAffinityConfig: clientIPConfig.optional(),
    ipFamilies: z
      .array(z.enum(["IPv4", "IPv6"]))
      .max(2, { error: "at most two IP families" })
      .optional(),
    ipFamilyPolicy: z.enum(["SingleStack", "PreferDualStack", "RequireDualStack"]).optional(),
    allocateLoadBalancerNodePorts: z.boolean().optional(),
    loadBalancerClass: qualifiedName("loadBalancerClass").optional(),
    internalTrafficPolicy: z.enum(["Cluster", "Local"]).optional(),
    trafficDistribution: z.enum(["PreferClose", "PreferSameZone", "PreferSameNode"]).optional(),
  })
  .superRefine((s, ctx) => {
    const ports = s.ports ?? [];
    const headless = s.clusterIP === "None";
    const external = s.type === "ExternalName";
    const exposed = s.type === "NodePort" || s.type === "LoadBalancer";
    if (ports.length === 0 && !headless && !external) {
      addMissing(ctx, ["ports"], "a Service needs at least one port (unless it is headless or ExternalName)");
    }
    ports.forEach((p, i) => {
      if (p.name === undefined || p.name === "") {
        if (ports.length > 1)
          addMissing(
            ctx,
            ["ports", i, "name"],
            "each port needs a name when a Service has more than one port",
          );
      } else if (!isDns1123Label(p.name)) {
        ctx.addIssue({
          code: "custom",
          message: `port name "${p.name}" must be a DNS-1123 label`,
          path: ["ports", i, "name"],
        });
      }
      if (p.nodePort !== undefined && !exposed) {
        ctx.addIssue({
          code: "custom",
          message: `nodePort may not be used when type is ${s.type}`,
          path: ["ports", i, "nodePort"],
        });
      }
    });
    checkUnique(
      ctx,
      ports,
      (p) => p.name || undefined,
      (i) => ["ports", i, "name"],
      "port name",
    );
    checkUnique(
      ctx,
      ports,
      (p) => `${p.port}/${p.protocol}`,
      (i) => ["ports", i, "port"],
      "port/protocol",
    );
    checkUnique(
      ctx,
      ports,
      (p) => (p.nodePort === undefined ? undefined : `${p.nodePort}/${p.protocol}`),
      (i) => ["ports", i, "nodePort"],
      "nodePort/protocol",
    );

    if (
      s.clusterIP !== undefined &&
      s.clusterIP !== "" &&
      s.clusterIP !== "None" &&
      !isIpAddress(s.clusterIP)
    ) {
      ctx.addIssue({
        code: "custom",
        message: `clusterIP "${s.clusterIP}" must be empty, "None" or an IP address`,
        path: ["clusterIP"],
      });
    }
    s.clusterIPs?.forEach((ip, i) => {
      if (ip === "None" ? (s.clusterIPs?.length ?? 0) > 1 : !isIpAddress(ip)) {
        ctx.addIssue({
          code: "custom",
          message: `clusterIPs entry "${ip}" must be an IP address, or "None" as the only entry`,
          path: ["clusterIPs", i],
        });
      }
    });
    if (s.clusterIP && s.clusterIPs && s.clusterIPs.length > 0 && s.clusterIPs[0] !== s.clusterIP) {
      ctx.addIssue({
        code: "custom",
        message: "clusterIPs[0] must equal clusterIP",
        path: ["clusterIPs", 0],
      });
    }
    if (headless && exposed)
      ctx.addIssue({
        code: "custom",
        message: `clusterIP may not be "None" for ${s.type} services`,
        path: ["clusterIP"],
      });
    if (s.ipFamilies && s.ipFamilies.length === 2 && s.ipFamilies[0] === s.ipFamilies[1]) {
      ctx.addIssue({
        code: "custom",
        message: "ipFamilies must not repeat a family",
        path: ["ipFamilies", 1],
      });
    }

    if (external) {
      if (!s.externalName) {
        addMissing(ctx, ["externalName"], "type ExternalName needs externalName (a DNS name)");
      } else if (
        !isDns1123Subdomain(s.externalName.replace(/\.$/, "").toLowerCase()) ||
        isIpAddress(s.externalName)
      ) {
        ctx.addIssue({
          code: "custom",
          message: `externalName "${s.externalName}" must be a DNS name`,
          path: ["externalName"],
        });
      }
      for (const f of ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] as const) {
        const v = s[f];
        if (v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0)) {
          ctx.addIssue({
            code: "custom",
            message: `${f} must not be set for ExternalName services`,
            path: [f],
          });
        }
      }
    }
    if (s.sessionAffinityConfig && s.sessionAffinity !== "ClientIP") {
      ctx.addIssue({
        code: "custom",
        message: "sessionAffinityConfig is only allowed with sessionAffinity ClientIP",
        path: ["sessionAffinityConfig"],
      });
    }
    const externallyAccessible = exposed || (s.type === "ClusterIP" && (s.externalIPs?.length ?? 0) > 0);
    if (s.externalTrafficPolicy !== undefined && !externallyAccessible) {
      ctx.addIssue({
        code: "custom",
        message:
          "externalTrafficPolicy may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)",
        path: ["externalTrafficPolicy"],
      });
    }
    if (
      s.healthCheckNodePort !== undefined &&
      !(s.type === "LoadBalancer" && s.externalTrafficPolicy === "Local")
    ) {
      ctx.addIssue({
        code: "custom",
        message: "healthCheckNodePort needs type LoadBalancer and externalTrafficPolicy Local",
        path: ["healthCheckNodePort"],
      });
    }
    for (const f of [
      "loadBalancerSourceRanges",
      "loadBalancerClass",
      "allocateLoadBalancerNodePorts",
    ] as const) {
      if (s[f] !== undefined && s.type !== "LoadBalancer") {
        ctx.addIssue({
          code: "custom",
          message: `${f} may only be used when type is LoadBalancer`,
          path: [f],
        });
      }
    }
  });

/**
 * Kubernetes' defaults that depend on other fields: targetPort is the port, a ClientIP affinity
 * gets a 3-hour timeout, traffic policies are Cluster where they apply.
 */
export const serviceSpec = serviceSpecBase.transform((s) => ({
  ...s,
  ports: s.ports?.map((p) => ({ ...p, targetPort: p.targetPort ?? p.port })),
  ...(s.sessionAffinity === "ClientIP" && !s.sessionAffinityConfig
    ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } } }
    : {}),
  ...(s.type !== "ExternalName" ? { internalTrafficPolicy: s.internalTrafficPolicy ?? "Cluster" } : {}),
  ...(s.type === "NodePort" || s.type === "LoadBalancer"
    ? { externalTrafficPolicy: s.externalTrafficPolicy ?? "Cluster" }
    : {}),
}));
export type ServiceSpec = z.infer<typeof serviceSpec>;
export type ServicePort = NonNullable<ServiceSpec["ports"]>[number];
