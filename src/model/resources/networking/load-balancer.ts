// Load balancing for DestinationRule traffic policies: simple policies, consistent hashing
// (ring hash, Maglev), locality and zone-aware settings, warmup — with istiod's checks.
import { z } from "zod";
import { addMissing, checkUnique, duration } from "../common.js";
import { istioDuration, uint32 } from "./shared.js";

const httpCookie = z
  .strictObject({
    name: z.string().min(1, { error: "cookie name must not be empty" }),
    path: z.string().optional(),
    ttl: duration.optional(),
    attributes: z
      .array(
        z.strictObject({
          name: z.string().min(1, { error: "cookie attribute name must not be empty" }),
          value: z.string().optional(),
        }),
      )
      .optional(),
  })
  .superRefine((c, ctx) =>
    checkUnique(
      ctx,
      c.attributes,
      (a) => a.name,
      (i) => ["attributes", i, "name"],
      "cookie attribute",
    ),
  );

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0) return false;
  for (let f = 3; f * f <= n; f += 2) if (n % f === 0) return false;
  return true;
}

export const consistentHash = z
  .strictObject({
    httpHeaderName: z.string().min(1).optional(),
    httpCookie: httpCookie.optional(),
    useSourceIp: z.boolean().optional(),
    httpQueryParameterName: z.string().min(1).optional(),
    ringHash: z.strictObject({ minimumRingSize: uint32.optional() }).optional(),
    maglev: z.strictObject({ tableSize: uint32.optional() }).optional(),
    minimumRingSize: uint32.optional(),
  })
  .superRefine((h, ctx) => {
    const keys = (["httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"] as const).filter(
      (k) => h[k] !== undefined,
    );
    if (keys.length > 1) {
      ctx.addIssue({
        code: "custom",
        message: `only one hash key may be set (found ${keys.join(", ")})`,
        path: [keys[1] ?? ""],
      });
    }
    if (h.ringHash && h.maglev)
      ctx.addIssue({
        code: "custom",
        message: "only one of ringHash or maglev may be set",
        path: ["maglev"],
      });
    if (h.minimumRingSize !== undefined && (h.ringHash || h.maglev)) {
      ctx.addIssue({
        code: "custom",
        message: "minimumRingSize (deprecated) cannot be combined with ringHash or maglev",
        path: ["minimumRingSize"],
      });
    }
    if (h.maglev) {
      const size = h.maglev.tableSize ?? 0;
      if (size === 0)
        addMissing(ctx, ["maglev", "tableSize"], "maglev needs tableSize (a prime below 5000011)");
      else if (size >= 5000011 || !isPrime(size)) {
        ctx.addIssue({
          code: "custom",
          message: `maglev tableSize ${size} must be a prime below 5000011`,
          path: ["maglev", "tableSize"],
        });
      }
    }
  });

const failover = z.strictObject({ from: z.string().optional(), to: z.string().optional() });

const localityLbSetting = z
  .strictObject({
    distribute: z
      .array(z.strictObject({ from: z.string().optional(), to: z.record(z.string(), uint32).optional() }))
      .optional(),
    failover: z.array(failover).optional(),
    failoverPriority: z.array(z.string()).optional(),
    enabled: z.boolean().optional(),
  })
  .superRefine((l, ctx) => {
    if ((l.distribute?.length ?? 0) > 0 && (l.failover?.length ?? 0) > 0) {
      ctx.addIssue({
        code: "custom",
        message: "distribute and failover cannot both be set",
        path: ["failover"],
      });
    }
    l.distribute?.forEach((d, i) => {
      const weights = Object.values(d.to ?? {});
      if (weights.some((w) => w < 1 || w > 100))
        ctx.addIssue({
          code: "custom",
          message: "locality weights must be 1-100",
          path: ["distribute", i, "to"],
        });
      else if (weights.reduce((a, b) => a + b, 0) !== 100) {
        ctx.addIssue({
          code: "custom",
          message: "locality weights must add up to 100",
          path: ["distribute", i, "to"],
        });
      }
      for (const loc of [d.from ?? "", ...Object.keys(d.to ?? {})]) {
        const stars = loc.split("*").length - 1;
        if (stars > 1 || (stars === 1 && !loc.endsWith("*")) || loc.split("/").some((p) => p === "")) {
          ctx.addIssue({
            code: "custom",
            message: `locality "${loc}" must be region[/zone[/subzone]] with at most one trailing '*'`,
            path: ["distribute", i],
          });
        }
      }
    });
    l.failover?.forEach((f, i) => {
      const [from, to] = [f.from ?? "", f.to ?? ""];
      let problem: string | undefined;
      if (from === to) problem = "failover from and to must be different regions";
      else if (from.includes("/") || to.includes("/")) problem = "failover names regions only (no '/')";
      else if (from.includes("*") || to.includes("*")) problem = "failover regions cannot contain '*'";
      if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["failover", i] });
    });
    if ((l.failover?.length ?? 0) > 0) {
      const at = (l.failoverPriority ?? []).findIndex(
        (p) => p.startsWith("topology.kubernetes.io/") || p === "topology.istio.io/subzone",
      );
      if (at >= 0)
        ctx.addIssue({
          code: "custom",
          message: "failover cannot be combined with a topology label in failoverPriority",
          path: ["failoverPriority", at],
        });
    }
  });

const zoneAwareLbSetting = z.strictObject({
  enabled: z.boolean().optional(),
  failover: z.array(failover).optional(),
  failoverPriority: z.array(z.string()).optional(),
  minClusterSize: uint32.optional(),
});

export const loadBalancer = z
  .strictObject({
    simple: z
      .enum(["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"])
      .optional(),
    consistentHash: consistentHash.optional(),
    localityLbSetting: localityLbSetting.optional(),
    zoneAwareLbSetting: zoneAwareLbSetting.optional(),
    warmupDurationSecs: duration.optional(),
    warmup: z
      .strictObject({
        duration: istioDuration.optional(),
        minimumPercent: z
          .number()
          .min(0)
          .max(100, { error: "minimumPercent must be at most 100" })
          .optional(),
        aggression: z.number().gt(0, { error: "aggression must be greater than 0" }).optional(),
      })
      .superRefine((w, ctx) => {
        if (w.duration === undefined) addMissing(ctx, ["duration"], "warmup needs a duration");
      })
      .optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.simple !== undefined && lb.consistentHash !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: "only one of simple or consistentHash may be set",
        path: ["consistentHash"],
      });
    }
    if (lb.localityLbSetting && lb.zoneAwareLbSetting) {
      ctx.addIssue({
        code: "custom",
        message: "only one of localityLbSetting or zoneAwareLbSetting may be set",
        path: ["zoneAwareLbSetting"],
      });
    }
    if (lb.warmupDurationSecs !== undefined && lb.warmup !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: "only one of warmupDurationSecs or warmup may be set",
        path: ["warmup"],
      });
    }
  });
