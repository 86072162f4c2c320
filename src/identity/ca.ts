// The control plane's certificate authority: self-managed roots with staged rotation (or a plug-in
// CA), workload/node/server certificates, and verification of the chains peers present.
import { createHash, X509Certificate } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { availableParallelism } from "node:os";
import { AmbitError } from "../core/errors.js";
import type { ErrorCode } from "../core/errors.js";
import { formatSpiffeId, parseSpiffeId } from "../model/spiffe.js";
import { CaStore, loadPluginCa, type PluginCa, type StoredRoot } from "./ca-store.js";
import { DEFAULT_WORKLOAD_TTL_SECONDS, type CsrPolicy } from "./csr-policy.js";
import {
  BACKDATE_MS,
  certificateInfo,
  createSelfSignedRoot,
  generateKey,
  generateKeyAsync,
  issueCertificate,
  normalizeFingerprint,
  prepareIssuer,
  type CertificateInfo,
  type PreparedIssuer,
} from "./pki.js";
import { NODE_ORGANIZATION } from "./sign-job.js";
import { SignPool } from "./sign-pool.js";

export const NODE_NAMESPACE = "ambit-system";
export const NODE_SERVICE_ACCOUNT = "ambit-node";
const ROOT_VALIDITY_DAYS = 3650;
const DEFAULT_ROOT_GRACE_SECONDS = 3600;
const DEFAULT_SERVER_CERT_DAYS = 365;
const DEFAULT_MAX_PENDING = 2048;
const MAX_CHAIN_LENGTH = 8;
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,62}[a-z0-9])?$/;

export interface CaOpenOptions {
  stateDir: string;
  trustDomain: string;
  pluginCa?: { certFile: string; keyFile: string; chainFile?: string | undefined } | undefined;
  /** Longest workload/node certificate validity granted; longer requests are refused. Default 86400. */
  maxWorkloadTtlSeconds?: number;
  /** Validity when a request names none. Default 86400 (capped by the maximum). */
  defaultWorkloadTtlSeconds?: number;
  /** How long a new root is trusted before it starts signing. Default 3600. */
  rootGraceSeconds?: number;
  now?: () => number;
  /** Signing worker threads; 0 signs on the calling thread. Default: one per core, at most 4. */
  workers?: number;
  /** Signing requests in flight before new ones are refused with AMBIT_E_UNAVAILABLE. Default 2048. */
  maxPending?: number;
}

export type SignResult =
  | { ok: true; certChain: string[]; serial: string; notAfter: Date }
  | { ok: false; code: ErrorCode; reason: string };
export type PeerResult =
  | { ok: true; identity: string; serial: string; notAfter: Date; nodeName?: string }
  | { ok: false; code: ErrorCode; reason: string };

export interface RootSummary {
  fingerprint: string;
  notAfter: Date;
  addedAt: Date;
  signing: boolean;
  /** When the root signs (or signed) from. */
  signingFrom: Date;
}

/** A signer as the CA uses it: pool id, the chain that follows a leaf, and when it takes over. */
interface Signer {
  id: number;
  certPem: string;
  key: KeyObject;
  /** What follows the leaf in an issued chain: intermediates…, root. */
  chainSuffix: string[];
  fingerprint: string;
  notAfter: Date;
  addedAt: Date;
  signingFrom: Date;
}

const refuse = (code: ErrorCode, reason: string): { ok: false; code: ErrorCode; reason: string } => ({
  ok: false,
  code,
  reason,
});

/** The node name bound in a node certificate (subject O=ambit-node, CN=<node>), if it is one. */
export function nodeNameOf(certPem: string): string | undefined {
  try {
    const info = certificateInfo(certPem);
    return info.subjectOrganization === NODE_ORGANIZATION ? info.subjectCommonName : undefined;
  } catch {
    return undefined;
  }
}

export class CertificateAuthority {
  readonly trustDomain: string;
  private signers: Signer[];
  private anchors: X509Certificate[] = [];
  private version = "";
  private readonly prepared = new Map<number, PreparedIssuer>();
  private readonly infoCache = new Map<string, CertificateInfo>();
  private readonly intermediates: X509Certificate[];
  private mutation: Promise<unknown> = Promise.resolve();

  private constructor(
    trustDomain: string,
    signers: Signer[],
    private readonly store: CaStore | undefined,
    private readonly plugin: PluginCa | undefined,
    private readonly pool: SignPool,
    private readonly now: () => number,
    private readonly rootGraceMs: number,
  ) {
    this.trustDomain = trustDomain;
    this.signers = signers;
    this.intermediates = plugin ? plugin.chain.slice(0, -1).map((p) => new X509Certificate(p)) : [];
    this.refreshTrust();
  }

  static async open(opts: CaOpenOptions): Promise<CertificateAuthority> {
    const td = opts.trustDomain;
    if (!parseSpiffeId(`spiffe://${td}/ns/a/sa/b`).ok) {
      throw new AmbitError(
        "AMBIT_E_INVALID_VALUE",
        `trust domain "${td}" must be lowercase letters, digits, '.', '-' or '_'`,
      );
    }
    const now = opts.now ?? Date.now;
    const max = opts.maxWorkloadTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    const policy: CsrPolicy = {
      trustDomain: td,
      maxTtlSeconds: max,
      defaultTtlSeconds: Math.min(opts.defaultWorkloadTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS, max),
    };
    let signers: Signer[];
    let store: CaStore | undefined;
    let plugin: PluginCa | undefined;
    if (opts.pluginCa) {
      plugin = await loadPluginCa(opts.pluginCa, new Date(now()));
      const root = new X509Certificate(plugin.rootPem);
      const at = new Date(now());
      signers = [
        {
          id: 0,
          certPem: plugin.signerCertPem,
          key: plugin.signerKey,
          chainSuffix: plugin.chain,
          fingerprint: root.fingerprint256,
          notAfter: new Date(Date.parse(root.validTo)),
          addedAt: at,
          signingFrom: at,
        },
      ];
    } else {
      const opened = await CaStore.open(opts.stateDir);
      store = opened.store;
      let roots = opened.roots;
      if (roots.length === 0) {
        const at = new Date(now());
        const key = generateKey("P-256").privateKey;
        const certPem = createSelfSignedRoot({
          trustDomain: td,
          validityDays: ROOT_VALIDITY_DAYS,
          key,
          now: at,
        });
        roots = [await store.addRoot(certPem, key, at, at)];
      }
      for (const r of roots) {
        const o = certificateInfo(r.certPem).subjectOrganization;
        if (o !== td) {
          throw new AmbitError(
            "AMBIT_E_CA_STATE",
            `the CA in ${store.dir} was created for trust domain "${o ?? "?"}", not "${td}": start with that trust domain or use another state directory`,
          );
        }
      }
      signers = roots.map(signerOfRoot);
    }
    const workers = opts.workers ?? Math.min(4, Math.max(1, availableParallelism()));
    const pool = new SignPool({ workers, maxPending: opts.maxPending ?? DEFAULT_MAX_PENDING, policy });
    return new CertificateAuthority(
      td,
      signers,
      store,
      plugin,
      pool,
      now,
      (opts.rootGraceSeconds ?? DEFAULT_ROOT_GRACE_SECONDS) * 1000,
    );
  }

  /** Every trusted root, PEM, oldest first. */
  trustBundle(): string[] {
    return this.plugin ? [this.plugin.rootPem] : this.signers.map((s) => s.certPem);
  }

  /** Changes whenever the set of trusted roots changes. */
  bundleVersion(): string {
    return this.version;
  }

  roots(): RootSummary[] {
    const current = this.currentSigner();
    return this.signers.map((s) => ({
      fingerprint: s.fingerprint,
      notAfter: s.notAfter,
      addedAt: s.addedAt,
      signing: s === current,
      signingFrom: s.signingFrom,
    }));
  }

  /** Sign a workload CSR for `identity` after the csr-policy checks. Never throws for bad input. */
  signWorkloadCsr(req: {
    csrPem: string;
    identity: string;
    validitySeconds?: number | undefined;
  }): Promise<SignResult> {
    if (typeof req.identity !== "string")
      return Promise.resolve(refuse("AMBIT_E_IDENTITY_MISMATCH", "no identity was requested"));
    return this.sign(req.csrPem, req.identity, req.validitySeconds, undefined);
  }

  /** Sign a node's CSR: identity spiffe://<td>/ns/ambit-system/sa/ambit-node, subject O=ambit-node, CN=<nodeName>. */
  signNodeCsr(req: {
    csrPem: string;
    nodeName: string;
    validitySeconds?: number | undefined;
  }): Promise<SignResult> {
    if (typeof req.nodeName !== "string" || !NODE_NAME.test(req.nodeName)) {
      return Promise.resolve(
        refuse(
          "AMBIT_E_INVALID_VALUE",
          `node name "${String(req.nodeName)}" must be a DNS-1123 name of at most 64 characters`,
        ),
      );
    }
    return this.sign(req.csrPem, this.nodeIdentity(), req.validitySeconds, req.nodeName);
  }

  nodeIdentity(): string {
    return formatSpiffeId({
      trustDomain: this.trustDomain,
      namespace: NODE_NAMESPACE,
      serviceAccount: NODE_SERVICE_ACCOUNT,
    });
  }

  private async sign(
    csrPem: unknown,
    identity: string,
    validitySeconds: number | undefined,
    nodeName: string | undefined,
  ): Promise<SignResult> {
    if (typeof csrPem !== "string") return refuse("AMBIT_E_CSR_INVALID", "no CSR was given");
    if (validitySeconds !== undefined && typeof validitySeconds !== "number") {
      return refuse("AMBIT_E_INVALID_VALUE", "validitySeconds must be a number");
    }
    const signer = this.currentSigner();
    if (!this.pool.hasIssuer(signer.id)) {
      this.pool.addIssuer(
        signer.id,
        signer.certPem,
        signer.key.export({ type: "pkcs8", format: "pem" }) as string,
      );
    }
    const out = await this.pool.run(signer.id, {
      csrPem,
      identity,
      validitySeconds,
      nodeName,
      nowMs: this.now(),
    });
    if (!out.ok) return out;
    return {
      ok: true,
      certChain: [out.certPem, ...signer.chainSuffix],
      serial: out.serial,
      notAfter: new Date(out.notAfterMs),
    };
  }

  /** A fresh key and certificate for the control plane's own TLS server (serverAuth, DNS/IP SANs). */
  async issueServerCertificate(
    sans: { dns: string[]; ips: string[] },
    validityDays = DEFAULT_SERVER_CERT_DAYS,
  ): Promise<{ certChain: string[]; keyPem: string }> {
    if (sans.dns.length + sans.ips.length === 0)
      throw new AmbitError("AMBIT_E_USAGE", "a server certificate needs at least one DNS name or IP address");
    const signer = this.currentSigner();
    const issuer = this.preparedIssuer(signer);
    const key = await generateKeyAsync("P-256");
    const now = this.now();
    const pem = issueCertificate({
      issuer,
      subjectPublicKeySpki: key.publicKeySpki,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(Math.min(now + validityDays * 86_400_000, issuer.notAfter.getTime())),
      dns: sans.dns,
      ips: sans.ips,
      serverAuth: true,
      clientAuth: false,
    });
    return { certChain: [pem, ...signer.chainSuffix], keyPem: key.privateKeyPem };
  }

  /**
   * Add a new root to the bundle now; it becomes the signer after the grace period, so every node
   * trusts it before any peer presents a certificate from it. The old roots stay trusted.
   */
  rotateRoot(): Promise<RootSummary> {
    return this.serialize(async () => {
      if (!this.store || this.plugin) {
        throw new AmbitError(
          "AMBIT_E_CA_STATE",
          "a plug-in CA's roots are managed by their owner: replace --ca-cert/--ca-key/--ca-chain instead",
        );
      }
      const at = new Date(this.now());
      const key = generateKey("P-256").privateKey;
      const certPem = createSelfSignedRoot({
        trustDomain: this.trustDomain,
        validityDays: ROOT_VALIDITY_DAYS,
        key,
        now: at,
      });
      const stored = await this.store.addRoot(certPem, key, at, new Date(at.getTime() + this.rootGraceMs));
      const signer = signerOfRoot(stored);
      this.signers = [...this.signers, signer];
      this.refreshTrust();
      return {
        fingerprint: signer.fingerprint,
        notAfter: signer.notAfter,
        addedAt: signer.addedAt,
        signing: false,
        signingFrom: signer.signingFrom,
      };
    });
  }

  /** Stop trusting a root. Refuses the current signer, the last root, and plug-in CAs. */
  removeRoot(fingerprint: string): Promise<{ ok: true } | { ok: false; code: ErrorCode; reason: string }> {
    return this.serialize(async () => {
      if (!this.store || this.plugin)
        return refuse("AMBIT_E_CA_STATE", "a plug-in CA's roots are managed by their owner");
      const fp = normalizeFingerprint(String(fingerprint));
      const root = this.signers.find((s) => normalizeFingerprint(s.fingerprint) === fp);
      if (!root) return refuse("AMBIT_E_CA_STATE", `no trusted root has fingerprint ${fingerprint}`);
      if (this.signers.length === 1)
        return refuse("AMBIT_E_CA_STATE", `root ${root.fingerprint} is the only root; rotate first`);
      if (root === this.currentSigner()) {
        return refuse(
          "AMBIT_E_CA_STATE",
          `root ${root.fingerprint} is the current signer; remove it once a newer root has taken over`,
        );
      }
      await this.store.removeRoot(root.id, new Date(this.now()));
      this.signers = this.signers.filter((s) => s !== root);
      this.prepared.delete(root.id);
      if (this.pool.hasIssuer(root.id)) this.pool.dropIssuer(root.id);
      this.refreshTrust();
      return { ok: true as const };
    });
  }

  /**
   * Verify a presented chain (leaf first) against the trust bundle at the CA's clock: signatures,
   * issuer links, validity, CA flags and path lengths, and the leaf's single SPIFFE ID in this trust domain.
   */
  verifyPeerChain(chainPem: string[]): PeerResult {
    try {
      return this.verifyChain(chainPem);
    } catch (err) {
      return refuse(
        "AMBIT_E_UNAUTHENTICATED",
        `the presented chain cannot be verified: ${(err as Error).message}`,
      );
    }
  }

  private verifyChain(chainPem: string[]): PeerResult {
    const unauth = (reason: string): PeerResult => refuse("AMBIT_E_UNAUTHENTICATED", reason);
    if (!Array.isArray(chainPem) || chainPem.length === 0) return unauth("no certificate was presented");
    if (chainPem.length > MAX_CHAIN_LENGTH)
      return unauth(`the presented chain has ${chainPem.length} certificates (at most ${MAX_CHAIN_LENGTH})`);
    let certs: X509Certificate[];
    try {
      certs = chainPem.map((p) => new X509Certificate(p));
    } catch (err) {
      return unauth(
        `the presented chain holds something that is not a certificate: ${(err as Error).message}`,
      );
    }
    const now = this.now();
    const leaf = certs[0] as X509Certificate;
    let info: CertificateInfo;
    try {
      info = this.info(leaf);
    } catch (err) {
      return unauth(`the presented certificate cannot be parsed: ${(err as Error).message}`);
    }
    const label = info.uris[0] ?? (leaf.subject ?? "").replace(/\n/g, ", ");
    if (leaf.ca) return unauth(`the presented certificate (${label}) is a CA certificate, not a leaf`);
    const expired = this.expiry(leaf, now, "certificate");
    if (expired) return unauth(`${expired} (${label})`);

    const candidates = [...certs.slice(1), ...this.intermediates];
    const used = new Set([leaf.fingerprint256]);
    let cur = leaf;
    for (let below = 0; ; below++) {
      const anchor = this.anchors.find((a) => cur.checkIssued(a) && cur.verify(a.publicKey));
      if (anchor) {
        const e = this.expiry(anchor, now, "trusted root");
        if (e) return unauth(e);
        break;
      }
      if (below >= MAX_CHAIN_LENGTH) return unauth("the presented chain is too long");
      const parent = candidates.find(
        (c) => !used.has(c.fingerprint256) && c.ca && cur.checkIssued(c) && cur.verify(c.publicKey),
      );
      if (!parent) {
        return unauth(
          `the certificate chain of ${label} does not lead to a trusted root of ${this.trustDomain} (no trusted issuer for "${(cur.issuer ?? "").replace(/\n/g, ", ")}")`,
        );
      }
      const e = this.expiry(parent, now, "intermediate CA certificate");
      if (e) return unauth(e);
      const pathLen = this.info(parent).pathLen;
      if (pathLen !== undefined && below > pathLen)
        return unauth(
          `intermediate "${(parent.subject ?? "").replace(/\n/g, ", ")}" allows ${pathLen} CAs below it`,
        );
      used.add(parent.fingerprint256);
      cur = parent;
    }

    if (info.uris.length !== 1)
      return unauth(`the certificate carries ${info.uris.length} URI SANs; expected exactly one SPIFFE ID`);
    const uri = info.uris[0] as string;
    const id = parseSpiffeId(uri);
    if (!id.ok) return unauth(`the certificate's URI SAN is not a SPIFFE ID: ${id.reason}`);
    if (id.identity.trustDomain !== this.trustDomain) {
      return refuse(
        "AMBIT_E_TRUST_DOMAIN",
        `the certificate names ${uri}, outside trust domain ${this.trustDomain}`,
      );
    }
    const nodeName =
      uri === this.nodeIdentity() && info.subjectOrganization === NODE_ORGANIZATION && info.subjectCommonName
        ? info.subjectCommonName
        : undefined;
    return {
      ok: true,
      identity: uri,
      serial: info.serial,
      notAfter: info.notAfter,
      ...(nodeName ? { nodeName } : {}),
    };
  }

  async close(): Promise<void> {
    await this.mutation.catch(() => undefined);
    await this.pool.close();
  }

  // ---------------------------------------------------------------------------------------------

  /** The newest root whose signingFrom has passed (the oldest one if the clock is before them all). */
  private currentSigner(): Signer {
    const now = this.now();
    let best: Signer | undefined;
    for (const s of this.signers) {
      if (s.signingFrom.getTime() <= now && (!best || s.signingFrom.getTime() >= best.signingFrom.getTime()))
        best = s;
    }
    return best ?? (this.signers[0] as Signer);
  }

  private preparedIssuer(s: Signer): PreparedIssuer {
    let p = this.prepared.get(s.id);
    if (!p) {
      p = prepareIssuer(s.certPem, s.key);
      this.prepared.set(s.id, p);
    }
    return p;
  }

  private refreshTrust(): void {
    const bundle = this.trustBundle();
    this.anchors = bundle.map((p) => new X509Certificate(p));
    this.version = createHash("sha256")
      .update(this.anchors.map((a) => a.fingerprint256).join("\n"))
      .digest("hex")
      .slice(0, 16);
  }

  private info(cert: X509Certificate): CertificateInfo {
    let i = this.infoCache.get(cert.fingerprint256);
    if (!i) {
      if (this.infoCache.size >= 4096) this.infoCache.clear();
      i = certificateInfo(cert);
      this.infoCache.set(cert.fingerprint256, i);
    }
    return i;
  }

  private expiry(cert: X509Certificate, now: number, what: string): string | undefined {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    if (now < from) return `the ${what} is not valid before ${new Date(from).toISOString()}`;
    if (now > to) return `the ${what} expired at ${new Date(to).toISOString()}`;
    return undefined;
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const next = this.mutation.then(work, work);
    this.mutation = next.catch(() => undefined);
    return next;
  }
}

function signerOfRoot(r: StoredRoot): Signer {
  const cert = new X509Certificate(r.certPem);
  return {
    id: r.record.n,
    certPem: cert.toString(),
    key: r.key,
    chainSuffix: [cert.toString()],
    fingerprint: cert.fingerprint256,
    notAfter: new Date(Date.parse(cert.validTo)),
    addedAt: new Date(r.record.addedAt),
    signingFrom: new Date(r.record.signingFrom),
  };
}
