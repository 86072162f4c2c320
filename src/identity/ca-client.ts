// The node's client of the control plane's CA: generates a key on the node, sends a CSR over
// Istio's CreateCertificate with the node certificate, and returns what the certificate manager
// caches. Workload keys are created here and never leave the node.
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { caServiceClient, stringStruct, unaryMethod } from "../api/protos.js";
import { AmbitError, asErrorCode } from "../core/errors.js";
import { formatSpiffeId, type Identity } from "../model/spiffe.js";
import type { CertificateFetcher, IssuedCertificate } from "./cert-types.js";
import { createCsr, generateKeyAsync } from "./pki.js";

/** What `ambit node join` wrote: the node's key, certificate chain and the trust bundle (PEM). */
export interface NodeCredentials {
  keyPem: string;
  certChainPem: string;
  rootsPem: string;
}

export async function readNodeCredentials(dir: string): Promise<NodeCredentials> {
  const [keyPem, certChainPem, rootsPem] = await Promise.all(
    ["key.pem", "cert-chain.pem", "root-cert.pem"].map((f) => readFile(join(dir, f), "utf8")),
  );
  return { keyPem: keyPem as string, certChainPem: certChainPem as string, rootsPem: rootsPem as string };
}

export interface CaClientOptions {
  /** The control plane's gRPC address, HOST:PORT. */
  address: string;
  /** Current node credentials; read on every call so a renewed node certificate is used at once. */
  credentials: () => NodeCredentials;
  /** Requested validity; the CA refuses more than its maximum (default 24 h). */
  validitySeconds?: number;
  timeoutMs?: number;
}

export class CaClient implements CertificateFetcher {
  private client: grpc.Client | undefined;
  private clientKey = "";

  constructor(private readonly opts: CaClientOptions) {}

  /** A gRPC client for the current credentials (recreated when they change). */
  private channel(): grpc.Client {
    const creds = this.opts.credentials();
    const key = `${creds.certChainPem}\n${creds.rootsPem}`;
    if (!this.client || key !== this.clientKey) {
      this.client?.close();
      const Client = caServiceClient();
      this.client = new Client(
        this.opts.address,
        grpc.credentials.createSsl(
          Buffer.from(creds.rootsPem),
          Buffer.from(creds.keyPem),
          Buffer.from(creds.certChainPem),
        ),
      );
      this.clientKey = key;
    }
    return this.client;
  }

  async fetch(identity: Identity, signal: AbortSignal): Promise<IssuedCertificate> {
    const spiffeId = formatSpiffeId(identity);
    const key = await generateKeyAsync("P-256");
    signal.throwIfAborted();
    const csr = createCsr(key.privateKey, { uris: [spiffeId] });
    const chain = await this.createCertificate(
      {
        csr,
        validityDuration: this.opts.validitySeconds ?? 86_400,
        metadata: stringStruct({ ImpersonatedIdentity: spiffeId }),
      },
      signal,
    );
    return issued(chain, key.privateKeyPem);
  }

  /** Renew the node's own certificate (no impersonation): returns the new chain and key. */
  async renewNodeCertificate(
    nodeIdentity: string,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<IssuedCertificate> {
    const key = await generateKeyAsync("P-256");
    const csr = createCsr(key.privateKey, { uris: [nodeIdentity] });
    const chain = await this.createCertificate(
      { csr, validityDuration: this.opts.validitySeconds ?? 86_400 },
      signal,
    );
    return issued(chain, key.privateKeyPem);
  }

  private createCertificate(request: object, signal: AbortSignal): Promise<string[]> {
    const method = unaryMethod(this.channel(), "CreateCertificate");
    return new Promise<string[]>((resolve, reject) => {
      if (!method) return reject(new Error("CreateCertificate missing from the loaded proto"));
      const call = method(
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + (this.opts.timeoutMs ?? 15_000) },
        (err, response) => {
          const res = response as { certChain?: string[] } | undefined;
          signal.removeEventListener("abort", onAbort);
          if (err) {
            const code = asErrorCode(err.metadata?.get("ambit-error-code")[0]) ?? "AMBIT_E_UNAVAILABLE";
            reject(
              new AmbitError(
                code,
                `CreateCertificate at ${this.opts.address}: ${err.details || err.message}`,
                { grpcStatus: err.code },
              ),
            );
          } else if (!res?.certChain?.length) {
            reject(
              new AmbitError(
                "AMBIT_E_UNAVAILABLE",
                `CreateCertificate at ${this.opts.address} returned no certificate`,
              ),
            );
          } else {
            resolve(res.certChain);
          }
        },
      );
      const onAbort = (): void => call.cancel();
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }
}

/** The CA's chain is leaf..root; the manager keeps leaf and intermediates (roots come from the bundle). */
function issued(chain: string[], privateKeyPem: string): IssuedCertificate {
  const leaf = new X509Certificate(chain[0] ?? "");
  const certChainPem = chain.length > 1 ? chain.slice(0, -1) : chain;
  return {
    certChainPem,
    privateKeyPem,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serial: leaf.serialNumber.toLowerCase(),
  };
}
