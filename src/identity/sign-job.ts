// One signing request end to end — parse the CSR, apply the policy, assemble and sign the leaf —
// as plain code shared by the signing worker threads and the inline (no worker) path.
import type { ErrorCode } from "../core/errors.js";
import { checkWorkloadCsr, type CsrPolicy } from "./csr-policy.js";
import { pemEncode } from "./der.js";
import {
  assembleTbs,
  BACKDATE_MS,
  encodeName,
  encodeSan,
  encodeValidity,
  leafExtensions,
  parseCsr,
  prepareIssuer,
  randomSerial,
  signTbs,
  type PreparedIssuer,
} from "./pki.js";

/** Subject organization that marks a node certificate; the node's name is the CommonName. */
export const NODE_ORGANIZATION = "ambit-node";

export interface SignJob {
  csrPem: string;
  /** The SPIFFE ID the certificate is for (already fixed for node certificates). */
  identity: string;
  validitySeconds?: number | undefined;
  /** Node certificates only: bound as subject O=ambit-node, CN=<nodeName>. */
  nodeName?: string | undefined;
  /** The CA's clock at request time (ms since the epoch). */
  nowMs: number;
}

export type SignOutcome =
  | { ok: true; certPem: string; serial: string; notAfterMs: number }
  | { ok: false; code: ErrorCode; reason: string };

/** Messages between the pool and its workers; jobs and results travel in small batches. */
export interface QueuedJob {
  seq: number;
  issuer: number;
  job: SignJob;
}
export type ToWorker =
  | { t: "issuer"; id: number; certPem: string; keyPem: string }
  | { t: "drop"; id: number }
  | { t: "sign"; jobs: QueuedJob[] };
export type JobResult = { seq: number; out: SignOutcome } | { seq: number; error: string };
export type FromWorker = { results: JobResult[] };

const CACHE_LIMIT = 10_000;

/** Signs leaves for one issuer, re-using every part that does not change between certificates. */
export class LeafSigner {
  private readonly constantExtensions: Buffer[];
  private readonly emptySubject = encodeName({});
  private readonly sanCache = new Map<string, Buffer>();
  private readonly nodeSubjectCache = new Map<string, Buffer>();
  private validityKey = "";
  private validityDer: Buffer = Buffer.alloc(0);

  constructor(
    readonly issuer: PreparedIssuer,
    private readonly policy: CsrPolicy,
  ) {
    this.constantExtensions = leafExtensions({ serverAuth: true, clientAuth: true });
    if (issuer.authorityKeyIdExtension) this.constantExtensions.push(issuer.authorityKeyIdExtension);
  }

  static fromPem(certPem: string, keyPem: string, policy: CsrPolicy): LeafSigner {
    return new LeafSigner(prepareIssuer(certPem, keyPem), policy);
  }

  sign(job: SignJob): SignOutcome {
    const parsed = parseCsr(job.csrPem, job.identity);
    const checked = checkWorkloadCsr(
      parsed,
      { identity: job.identity, validitySeconds: job.validitySeconds },
      this.policy,
    );
    if (!checked.ok) return checked;
    if (!parsed.ok) return parsed; // unreachable: the policy refuses unparsable CSRs
    const issuer = this.issuer;
    // Whole seconds: X.509 times have no fractions, and equal times share one encoding.
    const notBefore = Math.floor((job.nowMs - BACKDATE_MS) / 1000) * 1000;
    const notAfter = Math.min(
      Math.floor((job.nowMs + checked.ttlSeconds * 1000) / 1000) * 1000,
      issuer.notAfter.getTime(),
    );
    if (notAfter <= job.nowMs) {
      return {
        ok: false,
        code: "AMBIT_E_CA_STATE",
        reason: `the signing CA certificate expired at ${issuer.notAfter.toISOString()}`,
      };
    }
    const validityKey = `${notBefore}:${notAfter}`;
    if (validityKey !== this.validityKey) {
      this.validityDer = encodeValidity(new Date(notBefore), new Date(notAfter));
      this.validityKey = validityKey;
    }
    const node = job.nodeName;
    const subject =
      node === undefined
        ? this.emptySubject
        : this.cached(this.nodeSubjectCache, node, () =>
            encodeName({ organization: NODE_ORGANIZATION, commonName: node }),
          );
    // RFC 5280 §4.2.1.6: with an empty subject the SAN extension is critical.
    const san = this.cached(this.sanCache, `${node === undefined ? "c" : "n"} ${checked.identity}`, () =>
      encodeSan({ uris: [checked.identity] }, node === undefined),
    );
    const serial = randomSerial();
    const tbs = assembleTbs({
      serial,
      signatureAlgorithm: issuer.signatureAlgorithm,
      issuerNameDer: issuer.subjectNameDer,
      validityDer: this.validityDer,
      subjectNameDer: subject,
      spkiDer: parsed.csr.publicKeySpki,
      extensionDers: [...this.constantExtensions, san],
    });
    const der = signTbs(tbs, issuer.signatureAlgorithm, issuer.key);
    return {
      ok: true,
      certPem: pemEncode("CERTIFICATE", der),
      serial: serial.toString("hex"),
      notAfterMs: notAfter,
    };
  }

  private cached(map: Map<string, Buffer>, key: string, make: () => Buffer): Buffer {
    let v = map.get(key);
    if (v === undefined) {
      if (map.size >= CACHE_LIMIT) map.clear();
      v = make();
      map.set(key, v);
    }
    return v;
  }
}
