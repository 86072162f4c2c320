// Gateway (gateway.networking.k8s.io): listeners, addresses and infrastructure; Ambit's
// waypoints are Gateways of class istio-waypoint with an HBONE listener.
import { z } from "zod";
import { addMissing, checkUnique, isIpAddress, labelSelector } from "../common.js";
import {
  GATEWAY_GROUP,
  group,
  gwPort,
  hostname,
  kind,
  objectName,
  qualifiedKey,
  secretObjectReference,
  sectionName,
} from "./shared.js";

const CORE_PROTOCOLS = ["HTTP", "HTTPS", "TLS", "TCP", "UDP", "HBONE"];
const DOMAIN_PREFIXED = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$/;

export const listenerProtocol = z
  .string()
  .max(255)
  .refine((p) => CORE_PROTOCOLS.includes(p) || DOMAIN_PREFIXED.test(p), {
    message: `expected one of ${CORE_PROTOCOLS.join(", ")} or a domain-prefixed protocol such as example.com/custom`,
  });

const listenerTls = z
  .strictObject({
    mode: z.enum(["Terminate", "Passthrough"]).default("Terminate"),
    certificateRefs: z.array(secretObjectReference).max(64).optional(),
    options: z.record(qualifiedKey, z.string().max(4096)).optional(),
  })
  .superRefine((t, ctx) => {
    if (Object.keys(t.options ?? {}).length > 16)
      ctx.addIssue({ code: "custom", message: "at most 16 TLS options", path: ["options"] });
    if (
      t.mode === "Terminate" &&
      (t.certificateRefs?.length ?? 0) === 0 &&
      Object.keys(t.options ?? {}).length === 0
    ) {
      addMissing(ctx, ["certificateRefs"], "mode Terminate needs certificateRefs (or options)");
    }
  });

const routeNamespaces = z
  .strictObject({
    from: z.enum(["All", "Selector", "Same"]).default("Same"),
    selector: labelSelector.optional(),
  })
  .superRefine((n, ctx) => {
    if (n.from === "Selector" && !n.selector)
      addMissing(ctx, ["selector"], 'from "Selector" needs a selector');
  });

const allowedRoutes = z.strictObject({
  namespaces: routeNamespaces.default({ from: "Same" }),
  kinds: z
    .array(z.strictObject({ group: group.default(GATEWAY_GROUP), kind }))
    .max(8)
    .optional(),
});

export const listener = z.strictObject({
  name: sectionName,
  hostname: hostname.optional(),
  port: gwPort,
  protocol: listenerProtocol,
  tls: listenerTls.optional(),
  allowedRoutes: allowedRoutes.default({ namespaces: { from: "Same" } }),
});
export type Listener = z.infer<typeof listener>;

const address = z
  .strictObject({
    type: z
      .string()
      .max(253)
      .regex(
        /^(Hostname|IPAddress|NamedAddress|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+)$/,
        {
          error: "expected IPAddress, Hostname, NamedAddress or a domain-prefixed type",
        },
      )
      .default("IPAddress"),
    value: z.string().max(253).optional(),
  })
  .superRefine((a, ctx) => {
    if (a.value === undefined || a.value === "") return;
    if (a.type === "IPAddress" && !isIpAddress(a.value))
      ctx.addIssue({ code: "custom", message: `"${a.value}" is not an IP address`, path: ["value"] });
    if (a.type === "Hostname" && !hostname.safeParse(a.value).success) {
      ctx.addIssue({ code: "custom", message: `"${a.value}" is not a valid hostname`, path: ["value"] });
    }
  });

const infrastructure = z
  .strictObject({
    labels: z
      .record(
        qualifiedKey,
        z
          .string()
          .max(63)
          .regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, { error: "invalid label value" }),
      )
      .optional(),
    annotations: z.record(qualifiedKey, z.string().max(4096)).optional(),
    parametersRef: z.strictObject({ group, kind, name: objectName }).optional(),
  })
  .superRefine((inf, ctx) => {
    if (Object.keys(inf.labels ?? {}).length > 8)
      ctx.addIssue({ code: "custom", message: "at most 8 infrastructure labels", path: ["labels"] });
    if (Object.keys(inf.annotations ?? {}).length > 16)
      ctx.addIssue({
        code: "custom",
        message: "at most 16 infrastructure annotations",
        path: ["annotations"],
      });
  });

const frontendTls = z.strictObject({
  validation: z
    .strictObject({
      caCertificateRefs: z
        .array(z.strictObject({ group, kind, name: objectName, namespace: z.string().optional() }))
        .min(1)
        .max(16),
      mode: z.enum(["AllowValidOnly", "AllowInsecureFallback"]).default("AllowValidOnly"),
    })
    .optional(),
});

const gatewayTls = z.strictObject({
  backend: z.strictObject({ clientCertificateRef: secretObjectReference.optional() }).optional(),
  frontend: z
    .strictObject({
      default: frontendTls,
      perPort: z
        .array(z.strictObject({ port: gwPort, tls: frontendTls }))
        .max(64)
        .optional(),
    })
    .superRefine((f, ctx) =>
      checkUnique(
        ctx,
        f.perPort,
        (p) => p.port,
        (i) => ["perPort", i, "port"],
        "port",
      ),
    )
    .optional(),
});

export const gatewaySpec = z
  .strictObject({
    gatewayClassName: objectName,
    listeners: z.array(listener).min(1, { error: "a Gateway needs at least one listener" }).max(64),
    addresses: z.array(address).max(16).optional(),
    infrastructure: infrastructure.optional(),
    allowedListeners: z
      .strictObject({
        namespaces: z
          .strictObject({
            from: z.enum(["All", "Selector", "Same", "None"]).default("None"),
            selector: labelSelector.optional(),
          })
          .default({ from: "None" }),
      })
      .optional(),
    tls: gatewayTls.optional(),
    defaultScope: z.enum(["All", "None"]).optional(),
  })
  .superRefine((g, ctx) => {
    checkUnique(
      ctx,
      g.listeners,
      (l) => l.name,
      (i) => ["listeners", i, "name"],
      "listener name",
    );
    checkUnique(
      ctx,
      g.listeners,
      (l) => `${l.port}/${l.protocol}/${l.hostname ?? ""}`,
      (i) => ["listeners", i],
      "listener port/protocol/hostname",
    );
    g.listeners.forEach((l, i) => {
      const at = (f: string): PropertyKey[] => ["listeners", i, f];
      if (["HTTP", "TCP", "UDP"].includes(l.protocol) && l.tls) {
        ctx.addIssue({
          code: "custom",
          message: `tls must not be set for protocol ${l.protocol}`,
          path: at("tls"),
        });
      }
      if (l.protocol === "HTTPS" && l.tls && l.tls.mode !== "Terminate") {
        ctx.addIssue({
          code: "custom",
          message: "tls mode must be Terminate for protocol HTTPS",
          path: [...at("tls"), "mode"],
        });
      }
      if (l.protocol === "TLS" && !l.tls) addMissing(ctx, at("tls"), "protocol TLS needs tls with a mode");
      if (["TCP", "UDP"].includes(l.protocol) && l.hostname) {
        ctx.addIssue({
          code: "custom",
          message: `hostname must not be set for protocol ${l.protocol}`,
          path: at("hostname"),
        });
      }
    });
    for (const type of ["IPAddress", "Hostname"]) {
      checkUnique(
        ctx,
        g.addresses,
        (a) => (a.type === type && a.value ? a.value : undefined),
        (i) => ["addresses", i, "value"],
        `${type} address`,
      );
    }
  });
export type GatewaySpec = z.infer<typeof gatewaySpec>;
