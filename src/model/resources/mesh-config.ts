// The external authorizers a CUSTOM AuthorizationPolicy may name, read from an Istio MeshConfig
// (the `mesh` key of the istio ConfigMap): `extensionProviders` entries with `envoyExtAuthzHttp`
// or `envoyExtAuthzGrpc`. Each provider is validated on its own; a bad one is reported (file and
// field path) and left out, the good ones are kept. Other provider kinds (tracing, logging, ...)
// and the rest of MeshConfig are not Ambit's concern here and are skipped. Pure: no I/O.
import { isIP } from "node:net";
import { parse as parseYaml } from "yaml";
import { isDns1123Label } from "./common.js";

/**
 * The provider `timeout` when none is given. Istio documents 600s for both provider kinds; Ambit
 * keeps that default so a MeshConfig means the same here, and every check is bounded by it.
 */
export const DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 600_000;

/** The status sent to the client when the authorizer can't be asked and failOpen is false. */
export const DEFAULT_STATUS_ON_ERROR = 403;

/**
 * A header-name pattern: "abc" (exact), "abc*" (prefix), "*abc" (suffix), compared ignoring case
 * as header names are.
 */
export interface HeaderPattern {
  kind: "exact" | "prefix" | "suffix";
  /** Lower-case. */
  value: string;
}

export interface RequestBodyInCheck {
  maxRequestBytes: number;
  /** Send the first maxRequestBytes of a larger body instead of answering 413. */
  allowPartialMessage: boolean;
  /** gRPC only: the body goes in raw_body (bytes) instead of body (UTF-8 text). */
  packAsBytes: boolean;
}

interface ProviderCommon {
  name: string;
  /** The authorizer's host ("authz.foo.svc.cluster.local", "authz.example.com" or an IP). */
  service: string;
  /** The `<Namespace>/` qualifier of `service`, when given. */
  namespace: string | null;
  port: number;
  timeoutMs: number;
  failOpen: boolean;
  statusOnError: number;
  /** Accepted for compatibility; Ambit routes after authorization already. */
  clearRouteCache: boolean;
  includeRequestBodyInCheck: RequestBodyInCheck | null;
}

export interface ExtAuthzHttpProvider extends ProviderCommon {
  kind: "http";
  /** "" or a path starting with "/", prepended to the original path. */
  pathPrefix: string;
  /** Client headers forwarded to the authorizer (besides Host, Method, Path, Content-Length). */
  includeRequestHeadersInCheck: HeaderPattern[];
  /** Fixed headers added to every check; they override client headers of the same name. */
  includeAdditionalHeadersInCheck: Record<string, string>;
  /** Authorizer headers copied onto the upstream request on allow; null: none. */
  headersToUpstreamOnAllow: HeaderPattern[] | null;
  /** Authorizer headers copied to the client on deny; null: all but Host. */
  headersToDownstreamOnDeny: HeaderPattern[] | null;
  /** Authorizer headers copied onto the client's response on allow; null: none. */
  headersToDownstreamOnAllow: HeaderPattern[] | null;
}

export interface ExtAuthzGrpcProvider extends ProviderCommon {
  kind: "grpc";
}

export type ExtAuthzProvider = ExtAuthzHttpProvider | ExtAuthzGrpcProvider;

export interface MeshConfigResult {
  providers: Map<string, ExtAuthzProvider>;
  problems: string[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** HTTP header field-name characters (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HOST_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Go-style durations as Istio accepts them: "0.5s", "250ms", "1m30s"; protobuf JSON's "1.5s" included. */
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)(ms|us|µs|ns|h|m|s)/;
const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 1e-3,
  µs: 1e-3,
  ns: 1e-6,
};

/** Milliseconds of a duration string, or null when it isn't one. */
export function parseDurationMs(text: string): number | null {
  let rest = text.trim();
  if (rest === "") return null;
  let total = 0;
  while (rest !== "") {
    const m = DURATION.exec(rest);
    if (!m) return null;
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? NaN);
    rest = rest.slice(m[0].length);
  }
  return Number.isFinite(total) ? total : null;
}

/** A hostname (RFC 1123, any case, optional trailing dot) or an IPv4/IPv6 address. */
export function isHostOrIp(host: string): boolean {
  if (isIP(host) !== 0) return true;
  const h = host.toLowerCase().replace(/\.$/, "");
  if (h.length === 0 || h.length > 253) return false;
  return h.split(".").every((l) => l.length <= 63 && HOST_LABEL.test(l));
}

/** Does a lower-case header name match one of the patterns? */
export function matchesHeader(patterns: readonly HeaderPattern[], name: string): boolean {
  const n = name.toLowerCase();
  return patterns.some((p) =>
    p.kind === "exact" ? n === p.value : p.kind === "prefix" ? n.startsWith(p.value) : n.endsWith(p.value),
  );
}

/** Field lookup accepting the camelCase name and the proto's snake_case name, as Istio does. */
function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

class Fields {
  private readonly used = new Set<string>();
  constructor(
    private readonly obj: Obj,
    private readonly path: string,
    private readonly problems: string[],
  ) {}

  /** The value and the path of the field as written, if present (null counts as absent). */
  get(name: string): { value: unknown; path: string } | undefined {
    for (const key of [name, snake(name)]) {
      if (Object.hasOwn(this.obj, key)) {
        this.used.add(key);
        const value = this.obj[key];
        if (value === null || value === undefined) return undefined;
        return { value, path: `${this.path}.${key}` };
      }
    }
    return undefined;
  }

  /** Report fields no rule read (typos like `failopen` must not pass silently). */
  unknown(): void {
    for (const key of Object.keys(this.obj)) {
      if (!this.used.has(key)) this.problems.push(`${this.path}.${key}: unknown field`);
    }
  }
}

/** Parse an Istio MeshConfig's ext_authz providers. Never throws. */
export function parseMeshConfig(text: string, source: string): MeshConfigResult {
  const providers = new Map<string, ExtAuthzProvider>();
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    problems.push(`${source}: invalid YAML: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
    return { providers, problems };
  }
  // The whole ConfigMap is accepted too: its data.mesh holds the MeshConfig as YAML text.
  if (isObj(doc) && doc.kind === "ConfigMap" && isObj(doc.data) && typeof doc.data.mesh === "string") {
    const inner = parseMeshConfig(doc.data.mesh, `${source}: data.mesh`);
    return inner;
  }
  if (doc === null || doc === undefined) return { providers, problems };
  if (!isObj(doc)) {
    problems.push(`${source}: expected a MeshConfig mapping`);
    return { providers, problems };
  }
  const list = doc.extensionProviders ?? doc.extension_providers;
  if (list === undefined || list === null) return { providers, problems };
  if (!Array.isArray(list)) {
    problems.push(`${source}: extensionProviders: expected a list`);
    return { providers, problems };
  }
  const seen = new Set<string>();
  list.forEach((entry: unknown, i) => {
    const path = `extensionProviders[${i}]`;
    const local: string[] = [];
    const provider = parseProvider(entry, path, local);
    const name = isObj(entry) && typeof entry.name === "string" ? entry.name : undefined;
    if (name !== undefined && seen.has(name)) local.push(`${path}.name: duplicate provider name "${name}"`);
    if (name !== undefined) seen.add(name);
    for (const p of local) problems.push(`${source}: ${p}`);
    if (provider && local.length === 0) providers.set(provider.name, provider);
  });
  return { providers, problems };
}

function parseProvider(entry: unknown, path: string, problems: string[]): ExtAuthzProvider | null {
  if (!isObj(entry)) {
    problems.push(`${path}: expected a mapping`);
    return null;
  }
  const name = entry.name;
  if (typeof name !== "string" || name === "") {
    problems.push(`${path}.name: required, a non-empty string`);
    return null;
  }
  const http = entry.envoyExtAuthzHttp ?? entry.envoy_ext_authz_http;
  const grpc = entry.envoyExtAuthzGrpc ?? entry.envoy_ext_authz_grpc;
  if (http !== undefined && grpc !== undefined) {
    problems.push(`${path}: only one of envoyExtAuthzHttp and envoyExtAuthzGrpc may be set`);
    return null;
  }
  if (http === undefined && grpc === undefined) return null; // another kind of provider
  const kind = http !== undefined ? "http" : "grpc";
  const key = Object.hasOwn(entry, `envoyExtAuthz${kind === "http" ? "Http" : "Grpc"}`)
    ? `envoyExtAuthz${kind === "http" ? "Http" : "Grpc"}`
    : `envoy_ext_authz_${kind}`;
  const body = kind === "http" ? http : grpc;
  const at = `${path}.${key}`;
  if (!isObj(body)) {
    problems.push(`${at}: expected a mapping`);
    return null;
  }
  const f = new Fields(body, at, problems);
  const before = problems.length;

  let service = "";
  let namespace: string | null = null;
  const svc = f.get("service");
  if (!svc) problems.push(`${at}.service: required`);
  else if (typeof svc.value !== "string" || svc.value === "") problems.push(`${svc.path}: expected a string`);
  else {
    const slash = svc.value.indexOf("/");
    const host = slash >= 0 ? svc.value.slice(slash + 1) : svc.value;
    if (slash >= 0) {
      namespace = svc.value.slice(0, slash);
      if (!isDns1123Label(namespace))
        problems.push(`${svc.path}: namespace "${namespace}" is not a DNS-1123 label`);
    }
    if (!isHostOrIp(host))
      problems.push(
        `${svc.path}: "${host}" is not a hostname or IP address (format [<Namespace>/]<Hostname>)`,
      );
    service = host.replace(/\.$/, "");
  }

  const port = uintField(f, "port", at, problems, 1, 65535, true) ?? 0;
  let timeoutMs = DEFAULT_EXT_AUTHZ_TIMEOUT_MS;
  const t = f.get("timeout");
  if (t) {
    const ms = typeof t.value === "string" ? parseDurationMs(t.value) : null;
    if (ms === null || ms <= 0)
      problems.push(`${t.path}: expected a positive duration such as "0.5s" or "250ms"`);
    else timeoutMs = ms;
  }
  const failOpen = boolField(f, "failOpen", problems);
  const clearRouteCache = boolField(f, "clearRouteCache", problems);
  let statusOnError = DEFAULT_STATUS_ON_ERROR;
  const s = f.get("statusOnError");
  if (s) {
    const n =
      typeof s.value === "number"
        ? s.value
        : typeof s.value === "string" && /^\d+$/.test(s.value)
          ? +s.value
          : NaN;
    if (!Number.isInteger(n) || n < 200 || n > 599)
      problems.push(`${s.path}: expected an HTTP status 200..599`);
    else statusOnError = n;
  }
  let includeRequestBodyInCheck: RequestBodyInCheck | null = null;
  const b = f.get("includeRequestBodyInCheck");
  if (b) {
    if (!isObj(b.value)) problems.push(`${b.path}: expected a mapping`);
    else {
      const bf = new Fields(b.value, b.path, problems);
      const max = uintField(bf, "maxRequestBytes", b.path, problems, 1, 4294967295, true);
      const allowPartialMessage = boolField(bf, "allowPartialMessage", problems);
      const packAsBytes = boolField(bf, "packAsBytes", problems);
      bf.unknown();
      if (max !== undefined)
        includeRequestBodyInCheck = { maxRequestBytes: max, allowPartialMessage, packAsBytes };
    }
  }
  const common = {
    name,
    service,
    namespace,
    port,
    timeoutMs,
    failOpen,
    statusOnError,
    clearRouteCache,
    includeRequestBodyInCheck,
  };
  if (kind === "grpc") {
    f.unknown();
    return problems.length === before ? { kind, ...common } : null;
  }

  let pathPrefix = "";
  const pp = f.get("pathPrefix");
  if (pp) {
    if (typeof pp.value !== "string") problems.push(`${pp.path}: expected a string`);
    else if (pp.value !== "" && !pp.value.startsWith("/")) problems.push(`${pp.path}: must start with "/"`);
    else if (/[\s?#]/.test(pp.value)) problems.push(`${pp.path}: must not contain whitespace, "?" or "#"`);
    else pathPrefix = pp.value;
  }
  const deprecated = patternsField(f, "includeHeadersInCheck", problems);
  const include = patternsField(f, "includeRequestHeadersInCheck", problems) ?? deprecated ?? [];
  const additional: Record<string, string> = {};
  const a = f.get("includeAdditionalHeadersInCheck");
  if (a) {
    if (!isObj(a.value)) problems.push(`${a.path}: expected a mapping of header name to value`);
    else {
      for (const [k, v] of Object.entries(a.value)) {
        if (!HEADER_NAME.test(k) || k.startsWith(":"))
          problems.push(`${a.path}.${k}: not a valid header name`);
        else if (typeof v !== "string") problems.push(`${a.path}.${k}: expected a string`);
        else if (/[\r\n\0]/.test(v)) problems.push(`${a.path}.${k}: value must not contain CR, LF or NUL`);
        else additional[k.toLowerCase()] = v;
      }
    }
  }
  const headersToUpstreamOnAllow = patternsField(f, "headersToUpstreamOnAllow", problems) ?? null;
  const headersToDownstreamOnDeny = patternsField(f, "headersToDownstreamOnDeny", problems) ?? null;
  const headersToDownstreamOnAllow = patternsField(f, "headersToDownstreamOnAllow", problems) ?? null;
  f.unknown();
  if (problems.length !== before) return null;
  return {
    kind,
    ...common,
    pathPrefix,
    includeRequestHeadersInCheck: include,
    includeAdditionalHeadersInCheck: additional,
    headersToUpstreamOnAllow,
    headersToDownstreamOnDeny,
    headersToDownstreamOnAllow,
  };
}

/** An unsigned integer (protobuf JSON also accepts it as a decimal string). */
function uintField(
  f: Fields,
  name: string,
  at: string,
  problems: string[],
  min: number,
  max: number,
  required: boolean,
): number | undefined {
  const v = f.get(name);
  if (!v) {
    if (required) problems.push(`${at}.${name}: required`);
    return undefined;
  }
  const n =
    typeof v.value === "number"
      ? v.value
      : typeof v.value === "string" && /^\d+$/.test(v.value)
        ? +v.value
        : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${v.path}: expected ${min}..${max}`);
    return undefined;
  }
  return n;
}

function boolField(f: Fields, name: string, problems: string[]): boolean {
  const v = f.get(name);
  if (!v) return false;
  if (typeof v.value !== "boolean") {
    problems.push(`${v.path}: expected true or false`);
    return false;
  }
  return v.value;
}

/** A list of header-name patterns; undefined when the field is absent. */
function patternsField(f: Fields, name: string, problems: string[]): HeaderPattern[] | undefined {
  const v = f.get(name);
  if (!v) return undefined;
  if (!Array.isArray(v.value)) {
    problems.push(`${v.path}: expected a list of header names`);
    return undefined;
  }
  const out: HeaderPattern[] = [];
  v.value.forEach((item: unknown, i) => {
    const p = typeof item === "string" ? headerPattern(item) : null;
    if (!p) problems.push(`${v.path}[${i}]: expected a header name, "prefix*" or "*suffix"`);
    else out.push(p);
  });
  return out;
}

export function headerPattern(text: string): HeaderPattern | null {
  const lower = text.toLowerCase();
  let kind: HeaderPattern["kind"] = "exact";
  let value = lower;
  if (lower.length > 1 && lower.endsWith("*")) {
    kind = "prefix";
    value = lower.slice(0, -1);
  } else if (lower.length > 1 && lower.startsWith("*")) {
    kind = "suffix";
    value = lower.slice(1);
  }
  // Pseudo-header names (":authority") are allowed in exact form; HTTP/2 peers send them.
  const bare = kind === "exact" && value.startsWith(":") ? value.slice(1) : value;
  if (bare === "" || bare.includes("*") || !HEADER_NAME.test(bare)) return null;
  return { kind, value };
}
