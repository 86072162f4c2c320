// Loads Ambit's .proto files (proto/, written from the public API definitions) into grpc-js
// service definitions. Field names are camelCase, int64 as JS numbers, oneofs expanded.
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { packageRoot } from "../core/paths.js";

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [join(packageRoot(), "proto")],
};

/** Delta xDS and its resource types (envoy discovery, istio.workload, istio.security, ambit.v1 revocations). */
export const XDS_PROTO_FILES = [
  "envoy/service/discovery/v3/discovery.proto",
  "istio/workload/workload.proto",
  "istio/security/authorization.proto",
  "ambit/v1/revocation.proto",
  "ambit/v1/xds.proto",
  "ambit/v1/waypoint.proto",
] as const;

/** Envoy's external authorization check service, the waypoint's CUSTOM authorization client. */
export const EXT_AUTHZ_PROTO_FILES = ["envoy/service/auth/v3/external_auth.proto"] as const;

const PROTO_FILES = [
  "istio/security/ca.proto",
  "ambit/v1/node.proto",
  ...XDS_PROTO_FILES,
  ...EXT_AUTHZ_PROTO_FILES,
];

let cached: grpc.GrpcObject | undefined;

/** Every Ambit proto (CA, enrolment, Delta xDS and its resource types, ext_authz), loaded once. */
export function loadProtos(): grpc.GrpcObject {
  if (!cached) {
    const def = protoLoader.loadSync(PROTO_FILES, LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def);
  }
  return cached;
}

function lookup(path: string): grpc.ServiceClientConstructor {
  let node: unknown = loadProtos();
  for (const part of path.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`proto service ${path} not found`);
  return node as grpc.ServiceClientConstructor;
}

export const CA_SERVICE = "istio.v1.auth.IstioCertificateService";
export const NODE_SERVICE = "ambit.v1.NodeService";

export function caServiceClient(): grpc.ServiceClientConstructor {
  return lookup(CA_SERVICE);
}

export function nodeServiceClient(): grpc.ServiceClientConstructor {
  return lookup(NODE_SERVICE);
}

/** protobuf Struct as grpc-js delivers it, reduced to its string fields. */
export function structStrings(s: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const fields = (s as { fields?: Record<string, { stringValue?: string; kind?: string }> } | null)?.fields;
  if (!fields) return out;
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v.stringValue === "string" && (v.kind === undefined || v.kind === "stringValue"))
      out[k] = v.stringValue;
  }
  return out;
}

export function stringStruct(m: Record<string, string>): { fields: Record<string, { stringValue: string }> } {
  const fields: Record<string, { stringValue: string }> = {};
  for (const [k, v] of Object.entries(m)) fields[k] = { stringValue: v };
  return { fields };
}

export interface CertificateRequestMessage {
  csr: string;
  subjectId?: string;
  validityDuration?: number;
  metadata?: unknown;
}

export interface JoinRequestMessage {
  token: string;
  csr: string;
}

export type UnaryMethod = (
  req: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;

/** A unary method of a dynamically loaded client, bound to it. */
export function unaryMethod(client: grpc.Client, method: string): UnaryMethod | undefined {
  const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
  return fn?.bind(client);
}

/** Call a unary method of a dynamically loaded client, as a promise with a deadline. */
export function callUnary<Res>(
  client: grpc.Client,
  method: string,
  req: unknown,
  timeoutMs = 15_000,
  metadata = new grpc.Metadata(),
): Promise<Res> {
  const fn = unaryMethod(client, method);
  if (!fn) return Promise.reject(new Error(`no method ${method} on this client`));
  return new Promise<Res>((resolve, reject) => {
    fn(req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    );
  });
}

export const ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService";

/** The AggregatedDiscoveryService constructor (DeltaAggregatedResources only). */
export function adsServiceClient(): grpc.ServiceClientConstructor {
  return lookup(ADS_SERVICE);
}

export const EXT_AUTHZ_SERVICE = "envoy.service.auth.v3.Authorization";

/** The ext_authz Authorization constructor (Check); its `.service` serves test authorizers. */
export function extAuthzServiceClient(): grpc.ServiceClientConstructor {
  return lookup(EXT_AUTHZ_SERVICE);
}
