// The authorization engine's contract: what a request looks like, what a decision says.
// Shared by the node proxy (L4), the waypoint (L7), `ambit authz check` and the tests.

export type Layer = "L4" | "L7";

export interface JwtInfo {
  iss: string;
  sub: string;
  /** The token's full payload. */
  claims: Record<string, unknown>;
}

export interface HttpAttributes {
  method: string;
  path: string;
  host: string;
  /** Header names in any case. */
  headers: Record<string, string>;
  /** A token already validated by RequestAuthentication, or null when none was presented. */
  jwt: JwtInfo | null;
}

export interface AuthzRequest {
  destination: {
    namespace: string;
    workloadLabels: Record<string, string>;
    ip: string;
    port: number;
    serviceAccount: string;
    /** The Service the request was addressed to, when known (targetRefs kind Service). */
    service?: { name: string; namespace: string } | undefined;
  };
  source: {
    /** "cluster.local/ns/a/sa/b" for an mTLS/HBONE peer; null for a plaintext peer. */
    principal: string | null;
    namespace: string | null;
    ip: string;
  };
  http: HttpAttributes | null;
  /** Set when a waypoint enforces: the Gateway it runs for (targetRefs kind Gateway). */
  waypoint?: { name: string; namespace: string } | undefined;
}

export type Action = "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";

/** What one policy said about the request, beyond the enforced outcome. */
export interface PolicyNote {
  policy: string;
  action: Action;
  matched: boolean;
  dryRun: boolean;
}

export interface Decision {
  decision: "ALLOW" | "DENY";
  /** "namespace/name" of the deciding policy, or null when the default decided. */
  policy: string | null;
  /** A sentence a human understands. */
  reason: string;
  /** AUDIT policies that matched (never change the decision). */
  audit: string[];
  /** Dry-run policies with what they would have done. */
  dryRun: PolicyNote[];
  /** CUSTOM policies that apply and need an external authorizer (evaluated by the waypoint). */
  custom: string[];
}
