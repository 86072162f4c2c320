// Wire types of Delta xDS resources (Istio's ambient Address/Authorization, Ambit's RevocationList):
// TypeScript shapes of the decoded messages, their type URLs, and google.protobuf.Any encoding.
import { createHash } from "node:crypto";
import { join } from "node:path";
import protobuf from "protobufjs";
import { packageRoot } from "../core/paths.js";
import { XDS_PROTO_FILES } from "./protos.js";

export const TYPE_URL_PREFIX = "type.googleapis.com/";
export const ADDRESS_TYPE_URL = "type.googleapis.com/istio.workload.Address";
export const AUTHORIZATION_TYPE_URL = "type.googleapis.com/istio.security.Authorization";
export const REVOCATION_LIST_TYPE_URL = "type.googleapis.com/ambit.v1.RevocationList";
/** The L7 resources a waypoint compiles (Ambit's own type; node proxies do not subscribe). */
export const WAYPOINT_RESOURCE_TYPE_URL = "type.googleapis.com/ambit.v1.WaypointResource";
/** In a NACK's error_detail.details: one resource the client rejected (Ambit's extension). */
export const REJECTED_RESOURCE_TYPE_URL = "type.googleapis.com/ambit.v1.RejectedResource";

// ---------------------------------------------------------------------------------------------
// istio.workload

export type TunnelProtocol = "NONE" | "HBONE" | "LEGACY_ISTIO_MTLS";
export type WorkloadStatus = "HEALTHY" | "UNHEALTHY";
export type WorkloadType = "DEPLOYMENT" | "CRONJOB" | "POD" | "JOB";
export type AppProtocol = "UNKNOWN" | "HTTP11" | "HTTP2" | "GRPC" | "TCP" | "TLS";
export type IPFamilies = "AUTOMATIC" | "IPV4_ONLY" | "IPV6_ONLY" | "DUAL";
export type NetworkMode = "STANDARD" | "HOST_NETWORK";

export interface NetworkAddress {
  network?: string;
  /** 4 or 16 bytes. */
  address?: Uint8Array;
  length?: number;
}

export interface NamespacedHostname {
  namespace?: string;
  hostname?: string;
}

export interface GatewayAddress {
  hostname?: NamespacedHostname;
  address?: NetworkAddress;
  hboneMtlsPort?: number;
  /** Which oneof member is set (as decoded with oneofs: true). */
  destination?: "hostname" | "address";
}

export interface Port {
  servicePort?: number;
  targetPort?: number;
  appProtocol?: AppProtocol;
}

export interface PortList {
  ports?: Port[];
}

export interface LoadBalancing {
  routingPreference?: (
    "UNSPECIFIED_SCOPE" | "REGION" | "ZONE" | "SUBZONE" | "NODE" | "CLUSTER" | "NETWORK"
  )[];
  mode?: "UNSPECIFIED_MODE" | "STRICT" | "FAILOVER" | "PASSTHROUGH";
  healthPolicy?: "ONLY_HEALTHY" | "ALLOW_ALL";
}

export interface Locality {
  region?: string;
  zone?: string;
  subzone?: string;
}

export interface ApplicationTunnel {
  protocol?: "NONE" | "PROXY";
  port?: number;
}

export interface AnyMessage {
  typeUrl: string;
  value: Uint8Array;
}

export interface Extension {
  name?: string;
  config?: AnyMessage;
}

export interface WeightedWaypoint {
  destination?: GatewayAddress;
  weight?: number;
}

export interface Workload {
  uid?: string;
  name?: string;
  namespace?: string;
  addresses?: Uint8Array[];
  hostname?: string;
  network?: string;
  tunnelProtocol?: TunnelProtocol;
  trustDomain?: string;
  serviceAccount?: string;
  waypoint?: GatewayAddress;
  networkGateway?: GatewayAddress;
  node?: string;
  canonicalName?: string;
  canonicalRevision?: string;
  workloadType?: WorkloadType;
  workloadName?: string;
  nativeTunnel?: boolean;
  applicationTunnel?: ApplicationTunnel;
  /** "namespace/hostname" → ports of that service on this workload. */
  services?: Record<string, PortList>;
  authorizationPolicies?: string[];
  status?: WorkloadStatus;
  clusterId?: string;
  locality?: Locality;
  networkMode?: NetworkMode;
  extensions?: Extension[];
  capacity?: { value?: number };
}

export interface Service {
  name?: string;
  namespace?: string;
  hostname?: string;
  addresses?: NetworkAddress[];
  ports?: Port[];
  subjectAltNames?: string[];
  waypoint?: GatewayAddress;
  loadBalancing?: LoadBalancing;
  ipFamilies?: IPFamilies;
  extensions?: Extension[];
  canonical?: boolean;
  ingressUseWaypoint?: boolean;
  weightedWaypoints?: WeightedWaypoint[];
  visibility?: "PUBLIC" | "NAMESPACE";
}

export interface Address {
  workload?: Workload;
  service?: Service;
  /** Which oneof member is set (as decoded with oneofs: true). */
  type?: "workload" | "service";
}

// ---------------------------------------------------------------------------------------------
// istio.security (declared in model/authz/wire-types.ts, where the pure L4 evaluator reads them)

export type {
  Authorization,
  AuthorizationAction,
  AuthorizationScope,
  Clause,
  IpPrefix,
  Match,
  Rule,
  ServiceAccountMatch,
  StringMatch,
} from "../model/authz/wire-types.js";

// ---------------------------------------------------------------------------------------------
// ambit.v1

export interface RevocationMessage {
  identity?: string;
  serial?: string;
  reason?: string;
  revokedAt?: string;
}

export interface RevocationListMessage {
  revocations?: RevocationMessage[];
}

export interface WaypointResourceMessage {
  kind?: string;
  namespace?: string;
  name?: string;
  /** apiVersion, kind, metadata and spec as JSON. */
  json?: string;
}

// ---------------------------------------------------------------------------------------------
// envoy.service.discovery.v3 (as proto-loader delivers them; Any keeps `type_url`, see EncodedAny)

export interface NodeMessage {
  id?: string;
  cluster?: string;
  /** google.protobuf.Struct. */
  metadata?: unknown;
  locality?: { region?: string; zone?: string; subZone?: string } | null;
  userAgentName?: string;
  userAgentVersion?: string;
  clientFeatures?: string[];
}

export interface StatusMessage {
  code?: number;
  message?: string;
}

export interface DeltaDiscoveryRequestMessage {
  node?: NodeMessage | null;
  typeUrl?: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: StatusMessage | null;
}

export interface ResourceMessage {
  name?: string;
  version?: string;
  aliases?: string[];
  resource?: { typeUrl?: string; type_url?: string; value?: Uint8Array } | null;
}

export interface DeltaDiscoveryResponseMessage {
  systemVersionInfo?: string;
  resources?: ResourceMessage[];
  typeUrl?: string;
  nonce?: string;
  removedResources?: string[];
}

// ---------------------------------------------------------------------------------------------
// Encoding

let root: protobuf.Root | undefined;

/** The resource types as protobufjs reflection (loaded once from proto/). */
export function xdsRoot(): protobuf.Root {
  if (!root) {
    const dir = join(packageRoot(), "proto");
    const r = new protobuf.Root();
    // Well-known google/protobuf types are bundled with protobufjs; everything else is ours.
    r.resolvePath = (_origin, target) => (target.startsWith("google/protobuf/") ? target : join(dir, target));
    r.loadSync([...XDS_PROTO_FILES], { keepCase: false });
    r.resolveAll();
    root = r;
  }
  return root;
}

const typesByUrl = new Map<string, protobuf.Type>();

function typeFor(typeUrl: string): protobuf.Type {
  let type = typesByUrl.get(typeUrl);
  if (!type) {
    const slash = typeUrl.lastIndexOf("/");
    type = xdsRoot().lookupType(slash >= 0 ? typeUrl.slice(slash + 1) : typeUrl);
    typesByUrl.set(typeUrl, type);
  }
  return type;
}

/**
 * google.protobuf.Any as Ambit passes it around. protobufjs bundles the well-known types as JSON,
 * so proto-loader (keepCase: false) still names Any's first field `type_url` and silently drops
 * `typeUrl`: encodeAny sets both, decodeAny accepts either.
 */
export interface EncodedAny {
  typeUrl: string;
  type_url: string;
  value: Buffer;
}

/** Serialize a message (shapes above) into google.protobuf.Any. */
export function encodeAny(typeUrl: string, message: object): EncodedAny {
  const type = typeFor(typeUrl);
  const bytes = type.encode(type.fromObject(message)).finish();
  const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { typeUrl, type_url: typeUrl, value };
}

/** The type URL of an Any in either naming (ours, or proto-loader's `type_url`). */
export function anyTypeUrl(any: { typeUrl?: string; type_url?: string }): string {
  return any.typeUrl || any.type_url || "";
}

/**
 * Decode google.protobuf.Any with proto-loader's conventions (defaults, oneofs, enums as strings).
 * Unset sub-messages decode as null, as proto-loader delivers them.
 */
export function decodeAny<T = unknown>(any: { typeUrl?: string; type_url?: string; value: Uint8Array }): T {
  const type = typeFor(anyTypeUrl(any));
  const msg = type.decode(any.value);
  return type.toObject(msg, { longs: Number, enums: String, defaults: true, oneofs: true }) as T;
}

/** A stable version for a resource: a hash of its encoded bytes. */
export function resourceVersionOf(typeUrl: string, message: object): string {
  return createHash("sha256").update(encodeAny(typeUrl, message).value).digest("hex").slice(0, 16);
}
