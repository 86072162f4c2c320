// istio.security.* — the wire form of L4 authorization policies, as istiod sends them to ztunnel
// (AuthorizationPolicy and PeerAuthentication converted). The shapes of the decoded messages
// (proto-loader conventions: camelCase fields, enums as strings, oneof members named by
// `matchType`). Declared here so the pure evaluator (wire.ts) needs nothing from api/;
// api/xds-types.ts re-exports them for the transport.

export type AuthorizationScope = "GLOBAL" | "NAMESPACE" | "WORKLOAD_SELECTOR";
export type AuthorizationAction = "ALLOW" | "DENY";

/** istio.workload.Extension, structurally (api/xds-types.ts declares the same shape as `Extension`). */
export interface AuthorizationExtension {
  name?: string;
  config?: { typeUrl: string; value: Uint8Array };
}

export interface StringMatch {
  exact?: string;
  prefix?: string;
  suffix?: string;
  presence?: Record<string, never>;
  matchType?: "exact" | "prefix" | "suffix" | "presence";
}

export interface IpPrefix {
  address?: Uint8Array;
  length?: number;
}

export interface ServiceAccountMatch {
  namespace?: string;
  serviceAccount?: string;
}

export interface Match {
  namespaces?: StringMatch[];
  notNamespaces?: StringMatch[];
  serviceAccounts?: ServiceAccountMatch[];
  notServiceAccounts?: ServiceAccountMatch[];
  principals?: StringMatch[];
  notPrincipals?: StringMatch[];
  sourceIps?: IpPrefix[];
  notSourceIps?: IpPrefix[];
  destinationIps?: IpPrefix[];
  notDestinationIps?: IpPrefix[];
  destinationPorts?: number[];
  notDestinationPorts?: number[];
  extensions?: AuthorizationExtension[];
}

/** OR-ed matches (istiod's older name: Rules). */
export interface Clause {
  matches?: Match[];
}

/** AND-ed clauses (istiod's older name: Group). */
export interface Rule {
  clauses?: Clause[];
}

export interface Authorization {
  name?: string;
  namespace?: string;
  scope?: AuthorizationScope;
  action?: AuthorizationAction;
  rules?: Rule[];
  dryRun?: boolean;
  extensions?: AuthorizationExtension[];
}
