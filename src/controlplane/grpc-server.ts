// The control plane's gRPC endpoint (TLS, mesh CA): Istio's CreateCertificate for nodes acting on
// behalf of their workloads (the node-impersonation rule), and Ambit's node enrolment service.
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { Counter, type Registry } from "prom-client";
import { type ErrorCode } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import {
  CA_SERVICE,
  caServiceClient,
  nodeServiceClient,
  adsServiceClient,
  structStrings,
  type CertificateRequestMessage,
  type JoinRequestMessage,
} from "../api/protos.js";
import type { CertificateAuthority } from "../identity/ca.js";
import { formatSpiffeId, parseSpiffeId } from "../model/spiffe.js";
import type { ConfigStore } from "./config-store.js";
import type { JoinTokenStore } from "./join-tokens.js";
import type { RevocationStore } from "./revocations.js";

export const NODE_NAMESPACE = "ambit-system";
export const NODE_SERVICE_ACCOUNT = "ambit-node";
export const IMPERSONATED_IDENTITY = "ImpersonatedIdentity";

export interface GrpcDeps {
  ca: CertificateAuthority;
  config: ConfigStore;
  joinTokens: JoinTokenStore;
  revocations: RevocationStore;
  log: Logger;
  metrics: Registry;
  serverSans: { dns: string[]; ips: string[] };
  /** Serves DeltaAggregatedResources when given. */
  xdsHandler?: grpc.handleBidiStreamingCall<unknown, unknown>;
}

const STATUS_OF: Partial<Record<ErrorCode, grpc.status>> = {
  AMBIT_E_UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  AMBIT_E_JOIN_TOKEN: grpc.status.UNAUTHENTICATED,
  AMBIT_E_NODE_NOT_AUTHORIZED: grpc.status.PERMISSION_DENIED,
  AMBIT_E_IDENTITY_MISMATCH: grpc.status.PERMISSION_DENIED,
  AMBIT_E_REVOKED: grpc.status.PERMISSION_DENIED,
};

class Refusal {
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
  ) {}
  toStatus(): Partial<grpc.StatusObject> {
    const metadata = new grpc.Metadata();
    metadata.set("ambit-error-code", this.code);
    return {
      code: STATUS_OF[this.code] ?? grpc.status.INVALID_ARGUMENT,
      details: `${this.code}: ${this.reason}`,
      metadata,
    };
  }
}

/**
 * Serves the trust bundle and the server certificate to grpc-js, updating both on root changes.
 * A new listener gets the current value on the next tick: grpc-js registers its server watcher only
 * after adding provider listeners, so a synchronous first update would be lost.
 */
class CaCertificateProvider implements grpc.experimental.CertificateProvider {
  private caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private idListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private ca: grpc.experimental.CaCertificateUpdate | null = null;
  private identity: grpc.experimental.IdentityCertificateUpdate | null = null;

  update(bundlePem: string, certChainPem: string, keyPem: string): void {
    this.ca = { caCertificate: Buffer.from(bundlePem) };
    this.identity = { certificate: Buffer.from(certChainPem), privateKey: Buffer.from(keyPem) };
    for (const l of this.caListeners) l(this.ca);
    for (const l of this.idListeners) l(this.identity);
  }
  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    queueMicrotask(() => {
      if (this.ca && this.caListeners.has(l)) l(this.ca);
    });
  }
  removeCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.add(l);
    queueMicrotask(() => {
      if (this.identity && this.idListeners.has(l)) l(this.identity);
    });
  }
  removeIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.delete(l);
  }
}

export class ControlPlaneGrpcServer {
  private readonly server = new grpc.Server({ "grpc.max_receive_message_length": 1 << 20 });
  private readonly provider = new CaCertificateProvider();
  private readonly requests: Counter<"method" | "result">;
  private bundleVersion = "";

  constructor(private readonly deps: GrpcDeps) {
    this.requests = new Counter({
      name: "ambit_ca_requests_total",
      help: "Certificate and enrolment requests by method and result (ok or an AMBIT_E_* code)",
      labelNames: ["method", "result"],
      registers: [deps.metrics],
    });
    this.server.addService(caServiceClient().service, {
      CreateCertificate: (
        call: grpc.ServerUnaryCall<CertificateRequestMessage, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => this.respond("CreateCertificate", call, cb, () => this.createCertificate(call)),
    });
    this.server.addService(nodeServiceClient().service, {
      Join: (call: grpc.ServerUnaryCall<JoinRequestMessage, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        this.respond("Join", call, cb, () => this.join(call.request)),
      GetTrustBundle: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        this.respond("GetTrustBundle", call, cb, () => this.trustBundle(call)),
    });
    if (deps.xdsHandler) {
      this.server.addService(adsServiceClient().service, { DeltaAggregatedResources: deps.xdsHandler });
    }
  }

  /** Issue the server certificate, bind, and start serving; returns the bound port. */
  async listen(host: string, port: number): Promise<number> {
    await this.refreshCredentials();
    const creds = grpc.experimental.createCertificateProviderServerCredentials(
      this.provider,
      this.provider,
      false,
    );
    const bound = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${port}`, creds, (err, p) =>
        err ? reject(err) : resolve(p),
      );
    });
    return bound;
  }

  /** Re-issue the server certificate and republish the bundle (after a root is added or removed). */
  async refreshCredentials(): Promise<void> {
    const version = this.deps.ca.bundleVersion();
    if (version === this.bundleVersion) return;
    const { certChain, keyPem } = await this.deps.ca.issueServerCertificate(this.deps.serverSans);
    this.provider.update(this.deps.ca.trustBundle().join(""), certChain.join(""), keyPem);
    this.bundleVersion = version;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  private respond<T>(
    method: string,
    call: grpc.ServerUnaryCall<unknown, unknown>,
    cb: grpc.sendUnaryData<unknown>,
    work: () => Promise<T | Refusal>,
  ): void {
    work().then(
      (result) => {
        if (result instanceof Refusal) {
          this.requests.inc({ method, result: result.code });
          this.deps.log.warn(
            { method, peer: call.getPeer(), code: result.code, reason: result.reason },
            "request refused",
          );
          cb(result.toStatus());
        } else {
          this.requests.inc({ method, result: "ok" });
          cb(null, result);
        }
      },
      (err: unknown) => {
        this.requests.inc({ method, result: "internal" });
        this.deps.log.error({ method, err }, "request failed");
        cb({ code: grpc.status.INTERNAL, details: "internal error" });
      },
    );
  }

  /** The calling node, from its verified client certificate; refusals say exactly what is wrong. */
  authenticateNode(
    call: Pick<grpc.ServerUnaryCall<unknown, unknown>, "getAuthContext">,
  ): { node: string; serial: string } | Refusal {
    const peer = call.getAuthContext().sslPeerCertificate;
    if (!peer?.raw) {
      return new Refusal(
        "AMBIT_E_UNAUTHENTICATED",
        "no valid client certificate: call with the node certificate from `ambit node join`",
      );
    }
    const pem = new X509Certificate(peer.raw).toString();
    const verified = this.deps.ca.verifyPeerChain([pem]);
    if (!verified.ok) return new Refusal("AMBIT_E_UNAUTHENTICATED", verified.reason);
    const nodeId = this.nodeIdentity();
    if (verified.identity !== nodeId || !verified.nodeName) {
      return new Refusal(
        "AMBIT_E_UNAUTHENTICATED",
        `client certificate identity ${verified.identity} is not a node (${nodeId})`,
      );
    }
    const revoked = this.deps.revocations.check(verified.identity, verified.serial);
    if (revoked)
      return new Refusal(
        "AMBIT_E_REVOKED",
        `node certificate ${verified.serial} is revoked: ${revoked.reason}`,
      );
    return { node: verified.nodeName, serial: verified.serial };
  }

  private nodeIdentity(): string {
    return formatSpiffeId({
      trustDomain: this.deps.ca.trustDomain,
      namespace: NODE_NAMESPACE,
      serviceAccount: NODE_SERVICE_ACCOUNT,
    });
  }

  private async createCertificate(
    call: grpc.ServerUnaryCall<CertificateRequestMessage, unknown>,
  ): Promise<{ certChain: string[] } | Refusal> {
    const caller = this.authenticateNode(call);
    if (caller instanceof Refusal) return caller;
    const req = call.request;
    const requested = structStrings(req.metadata)[IMPERSONATED_IDENTITY];
    const validitySeconds =
      req.validityDuration && req.validityDuration > 0 ? req.validityDuration : undefined;
    if (requested === undefined || requested === this.nodeIdentity()) {
      // A node renewing its own certificate keeps its node name.
      const r = await this.deps.ca.signNodeCsr({ csrPem: req.csr, nodeName: caller.node, validitySeconds });
      return r.ok ? { certChain: r.certChain } : new Refusal(r.code, r.reason);
    }
    const parsed = parseSpiffeId(requested);
    if (!parsed.ok) return new Refusal("AMBIT_E_CSR_SAN", `ImpersonatedIdentity: ${parsed.reason}`);
    const id = parsed.identity;
    if (id.trustDomain !== this.deps.ca.trustDomain) {
      return new Refusal(
        "AMBIT_E_TRUST_DOMAIN",
        `identity ${requested} is not in trust domain ${this.deps.ca.trustDomain}`,
      );
    }
    if (!this.deps.config.hasWorkloadOnNode(caller.node, id.namespace, id.serviceAccount)) {
      return new Refusal(
        "AMBIT_E_NODE_NOT_AUTHORIZED",
        `identity ns/${id.namespace}/sa/${id.serviceAccount} has no workload on node ${caller.node}`,
      );
    }
    const revoked = this.deps.revocations.check(requested);
    if (revoked) return new Refusal("AMBIT_E_REVOKED", `identity ${requested} is revoked: ${revoked.reason}`);
    const r = await this.deps.ca.signWorkloadCsr({ csrPem: req.csr, identity: requested, validitySeconds });
    if (!r.ok) return new Refusal(r.code, r.reason);
    this.deps.log.info(
      { node: caller.node, identity: requested, serial: r.serial, notAfter: r.notAfter },
      "workload certificate issued",
    );
    return { certChain: r.certChain };
  }

  private async join(
    req: JoinRequestMessage,
  ): Promise<{ nodeName: string; certChain: string[]; trustBundle: string[] } | Refusal> {
    const check = this.deps.joinTokens.check(req.token);
    if (!check.ok) return new Refusal("AMBIT_E_JOIN_TOKEN", check.reason);
    const signed = await this.deps.ca.signNodeCsr({ csrPem: req.csr, nodeName: check.node });
    if (!signed.ok) return new Refusal(signed.code, signed.reason);
    // Use the token only once the node has a certificate; a concurrent second use loses here.
    const used = await this.deps.joinTokens.consume(req.token);
    if (!used.ok) return new Refusal("AMBIT_E_JOIN_TOKEN", used.reason);
    this.deps.log.info({ node: check.node, serial: signed.serial }, "node joined");
    return { nodeName: check.node, certChain: signed.certChain, trustBundle: this.deps.ca.trustBundle() };
  }

  private trustBundle(
    call: grpc.ServerUnaryCall<unknown, unknown>,
  ): Promise<{ roots: string[]; version: string } | Refusal> {
    const caller = this.authenticateNode(call);
    if (caller instanceof Refusal) return Promise.resolve(caller);
    return Promise.resolve({ roots: this.deps.ca.trustBundle(), version: this.deps.ca.bundleVersion() });
  }
}

export { CA_SERVICE };
