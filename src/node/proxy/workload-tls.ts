// TLS material for the local workloads' identities: the certificate manager fetches and renews
// each one through the control plane's CA (keys stay on the node), and this turns the current
// certificate plus the trust bundle into a SecureContext, built once per certificate and bundle.
import * as tls from "node:tls";
import type { CertificateManager } from "../../identity/cert-manager.js";
import type { IssuedCertificate } from "../../identity/cert-types.js";
import { formatSpiffeId, type Identity } from "../../model/spiffe.js";

export interface WorkloadContext {
  context: tls.SecureContext;
  cert: IssuedCertificate;
}

const TLS_OPTIONS = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3" } as const;

export class WorkloadTls {
  private readonly cache = new Map<string, { key: string; value: WorkloadContext }>();

  constructor(
    private readonly manager: CertificateManager,
    /** The trust bundle (PEM roots), read on each use so that root rotation applies at once. */
    private readonly roots: () => string,
  ) {}

  /** The identity's current context; fetches a certificate when none is cached. */
  async context(identity: Identity): Promise<WorkloadContext> {
    const cert = await this.manager.fetchCertificate(identity, "Connection");
    const id = formatSpiffeId(identity);
    const roots = this.roots();
    const key = `${cert.serial}\n${roots}`;
    const hit = this.cache.get(id);
    if (hit && hit.key === key) return hit.value;
    const context = tls.createSecureContext({
      ...TLS_OPTIONS,
      key: cert.privateKeyPem,
      cert: cert.certChainPem.join(""),
      ca: roots,
    });
    const value = { context, cert };
    this.cache.set(id, { key, value });
    return value;
  }

  track(identity: Identity): void {
    this.manager.track(identity);
  }

  untrack(identity: Identity): void {
    this.manager.untrack(identity);
    this.cache.delete(formatSpiffeId(identity));
  }
}
