// The authorization request as users write it (`ambit authz check --request`): validated with
// precise field paths, then completed with defaults (namespace from the principal, no HTTP = L4).
import { z } from "zod";
import { isIpAddress } from "../resources/common.js";
import { formatPath, type Problem } from "../resources/problem.js";
import { parsePrincipal } from "./context.js";
import type { AuthzRequest } from "./types.js";

const name = z.string().min(1, { error: "must not be empty" });
const ip = z.string().refine(isIpAddress, { message: "expected an IPv4 or IPv6 address" });
const PORT = "expected a port number (integer 1-65535)";
const port = z
  .number({ error: PORT })
  .int({ error: PORT })
  .min(1, { error: PORT })
  .max(65535, { error: PORT });

const principal = z.string().refine((s) => parsePrincipal(s) !== null, {
  message:
    'expected a SPIFFE identity "<trust-domain>/ns/<namespace>/sa/<service-account>", or null for a plaintext peer',
});

const schema = z.strictObject({
  destination: z.strictObject({
    namespace: name,
    workloadLabels: z.record(z.string(), z.string()).default({}),
    ip,
    port,
    serviceAccount: name.default("default"),
    service: z.strictObject({ name, namespace: name.optional() }).optional(),
  }),
  source: z.strictObject({
    principal: principal.nullable().default(null),
    namespace: name.nullable().optional(),
    ip,
  }),
  http: z
    .strictObject({
      method: name,
      path: name,
      host: z.string().optional(),
      headers: z.record(z.string(), z.string()).default({}),
      jwt: z
        .strictObject({
          iss: name,
          sub: z.string(),
          claims: z.record(z.string(), z.unknown()).optional(),
        })
        .nullable()
        .default(null),
    })
    .nullable()
    .optional(),
  waypoint: z.strictObject({ name, namespace: name }).optional(),
});

export type ParseResult = { ok: true; value: AuthzRequest } | { ok: false; problems: Problem[] };

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${v}`;
  return typeof v;
}

function toProblems(issues: readonly z.core.$ZodIssue[], file: string): Problem[] {
  const out: Problem[] = [];
  const add = (path: readonly PropertyKey[], message: string): void => {
    out.push({ code: "AMBIT_E_INVALID_REQUEST", file, index: 0, path: formatPath(path), message });
  };
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) add([...issue.path, key], `unknown field "${key}"`);
    } else if (issue.code === "invalid_type" && issue.input === undefined) {
      add(issue.path, `required field is missing (expected ${issue.expected})`);
    } else if (issue.code === "invalid_type") {
      add(issue.path, `expected ${issue.expected}, got ${describe(issue.input)}`);
    } else {
      add(issue.path, issue.message);
    }
  }
  return out;
}

export function parseAuthzRequest(value: unknown, file: string): ParseResult {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (!parsed.success) return { ok: false, problems: toProblems(parsed.error.issues, file) };
  const r = parsed.data;
  const problems: Problem[] = [];
  const id = r.source.principal === null ? null : parsePrincipal(r.source.principal);
  // The namespace of an mTLS peer is the one in its identity; a plaintext peer has none.
  const namespace = r.source.namespace ?? id?.namespace ?? null;
  if (id !== null && r.source.namespace != null && r.source.namespace !== id.namespace) {
    problems.push({
      code: "AMBIT_E_INVALID_REQUEST",
      file,
      index: 0,
      path: "source.namespace",
      message: `"${r.source.namespace}" contradicts the principal's namespace "${id.namespace}"`,
    });
  }
  if (problems.length > 0) return { ok: false, problems };
  const http = r.http ?? null;
  const dest = r.destination;
  const req: AuthzRequest = {
    destination: {
      namespace: dest.namespace,
      workloadLabels: dest.workloadLabels,
      ip: dest.ip,
      port: dest.port,
      serviceAccount: dest.serviceAccount,
      ...(dest.service
        ? { service: { name: dest.service.name, namespace: dest.service.namespace ?? dest.namespace } }
        : {}),
    },
    source: {
      principal: r.source.principal === null ? null : r.source.principal.replace(/^spiffe:\/\//, ""),
      namespace,
      ip: r.source.ip,
    },
    http:
      http === null
        ? null
        : {
            method: http.method,
            path: http.path,
            host: http.host ?? headerValue(http.headers, "host") ?? "",
            headers: http.headers,
            jwt:
              http.jwt === null
                ? null
                : {
                    iss: http.jwt.iss,
                    sub: http.jwt.sub,
                    claims: http.jwt.claims ?? { iss: http.jwt.iss, sub: http.jwt.sub },
                  },
          },
    ...(r.waypoint ? { waypoint: r.waypoint } : {}),
  };
  return { ok: true, value: req };
}

function headerValue(headers: Record<string, string>, lowerName: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lowerName) return v;
  return undefined;
}
