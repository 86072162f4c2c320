// Types shared by the certificate manager and the CA client that fills it, kept apart so that
// neither has to import the other.
import type { Identity } from "../model/spiffe.js";

/** A workload certificate as the control plane's CA issued it, with the key the node generated for it. */
export interface IssuedCertificate {
  /** Leaf first, then intermediates up to (not including) the root; PEM blocks. */
  certChainPem: string[];
  /** PKCS#8 PEM. Stays on the node: never handed to a workload process. */
  privateKeyPem: string;
  notBefore: Date;
  notAfter: Date;
  /** The leaf's serial number (hex), as revocation lists name it. */
  serial: string;
}

/**
 * Obtains a fresh certificate for one identity (key generation, CSR, CreateCertificate).
 * Implementations must stop work and reject once `signal` aborts: the manager frees the fetch
 * slot at that moment, so a fetcher that ignores it runs outside the concurrency limit.
 */
export interface CertificateFetcher {
  fetch(identity: Identity, signal: AbortSignal): Promise<IssuedCertificate>;
}
