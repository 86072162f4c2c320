// Keeps a joined node's own credentials fresh: renews the node certificate at half-life through
// the certificate manager (CreateCertificate with the current node certificate), refreshes the
// trust bundle, and rewrites key.pem / cert-chain.pem / root-cert.pem atomically on each change.
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { callUnary, nodeServiceClient } from "../api/protos.js";
import { writeFileAtomic } from "../core/atomic-file.js";
import type { Logger } from "../core/log.js";
import { CaClient, readNodeCredentials, type NodeCredentials } from "../identity/ca-client.js";
import { CertificateManager } from "../identity/cert-manager.js";
import type { Identity } from "../model/spiffe.js";
import { NODE_CREDENTIAL_FILES } from "./join.js";

export interface NodeCredentialsOptions {
  dir: string;
  controlPlane: string;
  trustDomain: string;
  log: Logger;
  bundleRefreshMs?: number;
}

export class NodeCredentialsKeeper {
  private creds!: NodeCredentials;
  private bundleVersion = "";
  private readonly ca: CaClient;
  private readonly manager: CertificateManager;
  private readonly identity: Identity;
  private bundleTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly opts: NodeCredentialsOptions) {
    this.identity = {
      trustDomain: opts.trustDomain,
      namespace: "ambit-system",
      serviceAccount: "ambit-node",
    };
    this.ca = new CaClient({ address: opts.controlPlane, credentials: () => this.creds });
    const nodeId = `spiffe://${opts.trustDomain}/ns/ambit-system/sa/ambit-node`;
    this.manager = new CertificateManager({
      fetcher: { fetch: (_id, signal) => this.ca.renewNodeCertificate(nodeId, signal) },
    });
  }

  static async start(opts: NodeCredentialsOptions): Promise<NodeCredentialsKeeper> {
    const keeper = new NodeCredentialsKeeper(opts);
    keeper.creds = await readNodeCredentials(opts.dir);
    keeper.manager.on("rotated", (e) => void keeper.adoptRenewed(e.serial));
    keeper.manager.on("issued", (e) => void keeper.adoptRenewed(e.serial));
    keeper.manager.on("failed", (e) =>
      opts.log.warn({ err: e.error, retryAt: e.retryAt }, "node certificate renewal failed"),
    );
    keeper.manager.track(keeper.identity);
    const every = opts.bundleRefreshMs ?? 60_000;
    keeper.bundleTimer = setInterval(() => void keeper.refreshBundle(), every).unref();
    await keeper.refreshBundle();
    return keeper;
  }

  credentials(): NodeCredentials {
    return this.creds;
  }

  /** The node's own CA client (current credentials), for workload certificate fetches. */
  caClient(): CaClient {
    return this.ca;
  }

  private async adoptRenewed(serial: string): Promise<void> {
    try {
      const cert = await this.manager.fetchCertificate(this.identity, "Refresh");
      const chain = cert.certChainPem.join("");
      await writeFileAtomic(join(this.opts.dir, NODE_CREDENTIAL_FILES.key), cert.privateKeyPem, 0o600);
      await writeFileAtomic(join(this.opts.dir, NODE_CREDENTIAL_FILES.chain), chain, 0o644);
      this.creds = { ...this.creds, keyPem: cert.privateKeyPem, certChainPem: chain };
      this.opts.log.info({ serial, notAfter: cert.notAfter }, "node certificate renewed");
    } catch (err) {
      this.opts.log.warn({ err }, "could not adopt the renewed node certificate");
    }
  }

  /** Pick up trust-bundle changes (root rotation) without a restart. */
  async refreshBundle(): Promise<boolean> {
    const Client = nodeServiceClient();
    const client = new Client(
      this.opts.controlPlane,
      grpc.credentials.createSsl(
        Buffer.from(this.creds.rootsPem),
        Buffer.from(this.creds.keyPem),
        Buffer.from(this.creds.certChainPem),
      ),
    );
    try {
      const res = await callUnary<{ roots: string[]; version: string }>(client, "GetTrustBundle", {});
      if (res.version === this.bundleVersion || res.roots.length === 0) return false;
      const rootsPem = res.roots.join("");
      await writeFileAtomic(join(this.opts.dir, NODE_CREDENTIAL_FILES.roots), rootsPem, 0o644);
      this.creds = { ...this.creds, rootsPem };
      this.bundleVersion = res.version;
      return true;
    } catch (err) {
      this.opts.log.warn({ err }, "trust bundle refresh failed; keeping the current bundle");
      return false;
    } finally {
      client.close();
    }
  }

  close(): void {
    if (this.bundleTimer) clearInterval(this.bundleTimer);
    this.manager.close();
    this.ca.close();
  }
}
