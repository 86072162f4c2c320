// The control plane's admin HTTP API (localhost by default): every route but /healthz needs the
// bearer token from the state directory. JSON in and out; bodies bounded.
import { X509Certificate } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Counter, type Registry } from "prom-client";
import { AmbitError, type ErrorCode } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import type { CertificateAuthority } from "../identity/ca.js";
import { spkiPin } from "../identity/pin.js";
import { bearerMatches } from "./admin-token.js";
import type { ConfigStore, ResourceStatus } from "./config-store.js";
import type { JoinTokenStore } from "./join-tokens.js";
import type { RevocationStore } from "./revocations.js";
import { isDns1123Subdomain } from "../model/resources/common.js";
import { KIND_INFO, resolveKindName } from "../model/resources/registry.js";

const MAX_BODY = 1 << 20;
/** apply carries whole manifests: a larger bound. */
const MAX_APPLY_BODY = 16 << 20;
const MAX_TOKEN_TTL_MS = 7 * 86_400_000;

export interface AdminDeps {
  token: string;
  ca: CertificateAuthority;
  config: ConfigStore;
  joinTokens: JoinTokenStore;
  revocations: RevocationStore;
  metrics: Registry;
  log: Logger;
  /** Called after the trust bundle changed (rotate/remove root). */
  onBundleChange: () => Promise<void>;
  /** Data-plane clients holding the current pushed form of a resource (xDS ACKs). */
  acksFor?: (kind: string, namespace: string | undefined, name: string) => string[] | undefined;
  /** Connected data-plane clients and their sync state (from the xDS server). */
  proxyStatus?: () => unknown;
}

/** One resource as GET /v1/resources returns it: the user's document, the validated spec, status. */
interface ResourceView {
  kind: string;
  namespace: string | undefined;
  name: string;
  object: Record<string, unknown>;
  spec: unknown;
  file: string;
  createdAt: string;
  status: ResourceStatus;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage, limit = MAX_BODY): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, "AMBIT_E_USAGE", `request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v as Record<string, unknown>;
  } catch (err) {
    throw new HttpError(400, "AMBIT_E_PARSE", `request body is not a JSON object: ${(err as Error).message}`);
  }
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export class AdminApi {
  private readonly server: Server;
  private readonly requests: Counter<"route" | "status">;

  constructor(private readonly deps: AdminDeps) {
    this.requests = new Counter({
      name: "ambit_admin_requests_total",
      help: "Admin API requests by route and HTTP status",
      labelNames: ["route", "status"],
      registers: [deps.metrics],
    });
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, req, err));
    });
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        const addr = this.server.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private send(
    res: ServerResponse,
    req: IncomingMessage,
    status: number,
    body: unknown,
    type = "application/json",
  ): void {
    const route = `${req.method ?? "?"} ${(req.url ?? "").split("?")[0]}`;
    this.requests.inc({ route: status === 404 ? "unknown" : route, status: String(status) });
    const text = type === "application/json" ? `${JSON.stringify(body, null, 2)}\n` : String(body);
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(text);
  }

  private fail(res: ServerResponse, req: IncomingMessage, err: unknown): void {
    if (err instanceof HttpError) {
      this.send(res, req, err.status, { code: err.code, message: err.message, ...err.extra });
      return;
    }
    this.deps.log.error({ err, url: req.url }, "admin request failed");
    if (!res.headersSent) this.send(res, req, 500, { code: "internal", message: "internal error" });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://admin");
    const route = `${req.method ?? "GET"} ${url.pathname}`;
    if (route === "GET /healthz") return this.send(res, req, 200, { status: "ok" });
    if (!bearerMatches(req.headers.authorization, this.deps.token)) {
      throw new HttpError(
        401,
        "AMBIT_E_UNAUTHENTICATED",
        "missing or wrong admin token (Authorization: Bearer <DIR/admin-token>)",
      );
    }
    const { ca } = this.deps;
    switch (route) {
      case "GET /metrics":
        return this.send(res, req, 200, await this.deps.metrics.metrics(), this.deps.metrics.contentType);
      case "GET /v1/ca/bundle":
        return this.send(res, req, 200, ca.trustBundle().join(""), "application/x-pem-file");
      case "GET /v1/ca/roots":
        return this.send(res, req, 200, {
          trustDomain: ca.trustDomain,
          version: ca.bundleVersion(),
          roots: ca.roots(),
        });
      case "POST /v1/ca/rotate-root": {
        const added = await ca.rotateRoot().catch((err: unknown) => {
          // A plug-in CA's roots belong to the user's PKI: rotation happens there.
          if (err instanceof AmbitError) throw new HttpError(409, err.code, err.message);
          throw err;
        });
        await this.deps.onBundleChange();
        this.deps.log.info({ added }, "root rotation started");
        return this.send(res, req, 200, { added, roots: ca.roots() });
      }
      case "POST /v1/ca/remove-root": {
        const body = await readJson(req);
        const fingerprint = str(body.fingerprint);
        if (!fingerprint) throw new HttpError(400, "AMBIT_E_USAGE", "body needs fingerprint");
        const r = await ca.removeRoot(fingerprint);
        if (!r.ok) throw new HttpError(409, "AMBIT_E_CA_STATE", r.reason);
        await this.deps.onBundleChange();
        return this.send(res, req, 200, { roots: ca.roots() });
      }
      case "POST /v1/join-tokens": {
        const body = await readJson(req);
        const node = str(body.node);
        // The node name becomes the node certificate's CommonName: at most 64 characters.
        if (!node || !isDns1123Subdomain(node) || node.length > 64) {
          throw new HttpError(
            400,
            "AMBIT_E_USAGE",
            "node must be a DNS-1123 name of at most 64 characters, such as node-1",
          );
        }
        const ttlSeconds = typeof body.ttlSeconds === "number" ? body.ttlSeconds : 3600;
        if (!(ttlSeconds > 0) || ttlSeconds * 1000 > MAX_TOKEN_TTL_MS) {
          throw new HttpError(400, "AMBIT_E_USAGE", "ttlSeconds must be between 1 and 604800 (7 days)");
        }
        const signer = ca.roots().find((r) => r.signing) ?? ca.roots()[0];
        const bundle = ca.trustBundle();
        const norm = (f: string | undefined): string => (f ?? "").replace(/:/g, "").toLowerCase();
        const pinSource =
          bundle.find((pem) => norm(new X509Certificate(pem).fingerprint256) === norm(signer?.fingerprint)) ??
          bundle[0] ??
          "";
        const created = await this.deps.joinTokens.create(node, ttlSeconds * 1000, spkiPin(pinSource));
        this.deps.log.info({ node, expiresAt: created.expiresAt }, "join token created");
        return this.send(res, req, 201, { node, token: created.token, expiresAt: created.expiresAt });
      }
      case "GET /v1/join-tokens":
        return this.send(res, req, 200, { tokens: this.deps.joinTokens.list() });
      case "GET /v1/revocations":
        return this.send(res, req, 200, { revocations: this.deps.revocations.list() });
      case "POST /v1/revocations": {
        const body = await readJson(req);
        const r = await this.deps.revocations.add({
          identity: str(body.identity),
          serial: str(body.serial),
          reason: str(body.reason),
        });
        if (!r.ok) throw new HttpError(400, "AMBIT_E_USAGE", r.reason);
        this.deps.log.warn({ revocation: r.revocation }, "revoked");
        return this.send(res, req, 201, r.revocation);
      }
      case "GET /debug/memory": {
        // Live memory: with ?gc=1 and the process started with --expose-gc, after a full collection.
        const gc = (globalThis as { gc?: () => void }).gc;
        const collected = url.searchParams.get("gc") === "1" && gc !== undefined;
        if (collected) gc();
        return this.send(res, req, 200, { ...process.memoryUsage(), collected });
      }
      case "GET /v1/proxy-status":
        return this.send(res, req, 200, { clients: this.deps.proxyStatus?.() ?? [] });
      case "GET /v1/config/problems":
        return this.send(res, req, 200, { problems: this.deps.config.problems() });
      case "POST /v1/apply":
        return this.apply(req, res);
      case "POST /v1/delete":
        return this.delete(req, res);
      case "GET /v1/resources":
        return this.getResources(req, res, url);
      default:
        throw new HttpError(404, "AMBIT_E_USAGE", `no such admin route: ${route}`);
    }
  }
  private async apply(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, MAX_APPLY_BODY);
    const files = Array.isArray(body.files) ? body.files : undefined;
    const texts = files?.map((f: unknown) => {
      const o = (typeof f === "object" && f !== null ? f : {}) as Record<string, unknown>;
      return { file: str(o.file) ?? "<request>", text: str(o.text) };
    });
    if (!texts || texts.length === 0 || texts.some((t) => t.text === undefined)) {
      throw new HttpError(400, "AMBIT_E_USAGE", "body needs files: [{file, text}, ...] with text a string");
    }
    const r = await this.deps.config.apply(texts.map((t) => ({ file: t.file, text: t.text ?? "" })));
    if (!r.ok) {
      throw new HttpError(
        422,
        "AMBIT_E_CONFIG_REJECTED",
        `${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}; nothing was applied`,
        { problems: r.problems },
      );
    }
    const changed = r.applied.filter((a) => a.action !== "unchanged").length;
    if (changed > 0) this.deps.log.info({ changed, total: r.applied.length }, "config applied");
    return this.send(res, req, 200, { applied: r.applied });
  }

  private async delete(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const refs = Array.isArray(body.refs) ? body.refs : undefined;
    const parsed = refs?.map((x: unknown) => {
      const o = (typeof x === "object" && x !== null ? x : {}) as Record<string, unknown>;
      return { kind: str(o.kind), namespace: str(o.namespace), name: str(o.name) };
    });
    if (!parsed || parsed.length === 0 || parsed.some((p) => !p.kind || !p.name)) {
      throw new HttpError(400, "AMBIT_E_USAGE", "body needs refs: [{kind, namespace?, name}, ...]");
    }
    const resolved = parsed.map((p) => {
      const info = resolveKindName(p.kind ?? "");
      if (!info) throw unknownKind(p.kind ?? "");
      return { kind: info.kind, namespace: p.namespace, name: p.name ?? "" };
    });
    const r = await this.deps.config.delete(resolved, { ignoreNotFound: body.ignoreNotFound === true });
    if (!r.ok) {
      if (r.problems.length > 0) {
        throw new HttpError(409, "AMBIT_E_CONFLICT", r.problems.map((p) => p.message).join("; "), {
          problems: r.problems,
        });
      }
      const names = r.notFound.map((n) => {
        const plural = resolveKindName(n.kind)?.plural ?? n.kind;
        return `${plural} "${n.name}" not found${n.namespace ? ` in namespace "${n.namespace}"` : ""}`;
      });
      throw new HttpError(404, "AMBIT_E_NOT_FOUND", `(NotFound) ${names.join("; ")}; nothing was deleted`, {
        notFound: r.notFound,
      });
    }
    if (r.deleted.length > 0) this.deps.log.info({ deleted: r.deleted.length }, "config deleted");
    return this.send(res, req, 200, { deleted: r.deleted });
  }

  private getResources(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const kindName = url.searchParams.get("kind");
    if (!kindName) throw new HttpError(400, "AMBIT_E_USAGE", "query needs kind=KIND");
    const info = resolveKindName(kindName);
    if (!info) throw unknownKind(kindName);
    const namespace = info.namespaced ? (url.searchParams.get("namespace") ?? undefined) : undefined;
    const name = url.searchParams.get("name") ?? undefined;
    const found = this.deps.config.list({
      kind: info.kind,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(name !== undefined ? { name } : {}),
    });
    const rejected = this.deps.config.listRejected({
      kind: info.kind,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(name !== undefined ? { name } : {}),
    });
    if (name !== undefined && found.length === 0 && rejected.length === 0) {
      throw new HttpError(
        404,
        "AMBIT_E_NOT_FOUND",
        `(NotFound) ${info.plural}.${info.group || "core"} "${name}" not found${namespace ? ` in namespace "${namespace}"` : ""}`,
      );
    }
    const resources = found
      .map((e): ResourceView => ({
        kind: e.resource.kind,
        namespace: e.resource.metadata.namespace,
        name: e.resource.metadata.name,
        object: e.raw,
        spec: e.resource.spec,
        file: e.file,
        createdAt: e.createdAt,
        status: {
          ...e.status,
          acks:
            this.deps.acksFor?.(e.resource.kind, e.resource.metadata.namespace, e.resource.metadata.name) ??
            e.status.acks,
        },
      }))
      .concat(
        rejected.map((e): ResourceView => ({
          kind: e.kind,
          namespace: e.namespace,
          name: e.name,
          object: e.raw,
          spec: e.raw.spec,
          file: e.file,
          createdAt: e.firstSeen,
          status: {
            phase: "rejected",
            generation: 0,
            acceptedAt: "",
            rejectedAt: e.firstSeen,
            problems: e.problems,
            message: `never accepted, nothing serves it: ${e.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`,
            acks: [],
          },
        })),
      )
      .sort((a, b) =>
        (a.namespace ?? "") === (b.namespace ?? "")
          ? a.name.localeCompare(b.name)
          : (a.namespace ?? "").localeCompare(b.namespace ?? ""),
      );
    return this.send(res, req, 200, {
      kind: info.kind,
      group: info.group,
      plural: info.plural,
      namespaced: info.namespaced,
      resources,
    });
  }
}

function unknownKind(name: string): HttpError {
  return new HttpError(
    400,
    "AMBIT_E_UNKNOWN_KIND",
    `the server doesn't have a resource type "${name}"; accepted kinds: ${KIND_INFO.map((k) => k.kind).join(", ")}`,
  );
}
