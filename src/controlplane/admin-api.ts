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
import type { ConfigStore } from "./config-store.js";
import type { JoinTokenStore } from "./join-tokens.js";
import type { RevocationStore } from "./revocations.js";
import { isDns1123Subdomain } from "../model/resources/common.js";

const MAX_BODY = 1 << 20;
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
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, "AMBIT_E_USAGE", `request body over ${MAX_BODY} bytes`);
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
      this.send(res, req, err.status, { code: err.code, message: err.message });
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
      case "GET /v1/config/problems":
        return this.send(res, req, 200, { problems: this.deps.config.problems() });
      default:
        throw new HttpError(404, "AMBIT_E_USAGE", `no such admin route: ${route}`);
    }
  }
}
