// PKI helpers, pure (no I/O, no clock): keys, issuers, leaf/CA/root certificates and their inspection;
// re-exports the CSR (csr.ts) and certificate-part (x509-parts.ts) helpers.
import { generateKeyPair, generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { AsnParser } from "@peculiar/asn1-schema";
import * as x from "@peculiar/asn1-x509";
import { AmbitError } from "../core/errors.js";
import { pemEncode } from "./der.js";
import {
  assembleTbs,
  caExtensions,
  collectSans,
  encodeAuthorityKeyId,
  encodeName,
  encodeSan,
  encodeValidity,
  leafExtensions,
  OID,
  randomSerial,
  ser,
  signatureAlgorithmFor,
  signTbs,
  spkiOf,
  toPrivateKey,
  type SignatureAlgorithm,
} from "./x509-parts.js";

export { createCsr, parseCsr, type KeyKind, type ParseCsrResult, type ParsedCsr } from "./csr.js";
export {
  assembleTbs,
  encodeName,
  encodeSan,
  encodeValidity,
  leafExtensions,
  randomSerial,
  signatureAlgorithmFor,
  signTbs,
  spkiOf,
  subjectKeyIdOf,
  toPrivateKey,
  type SignatureAlgorithm,
  type TbsParts,
} from "./x509-parts.js";

// ---------------------------------------------------------------------------------------------
// Keys

const generateKeyPairAsync = promisify(generateKeyPair);

export interface GeneratedKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8 PEM. */
  privateKeyPem: string;
  /** DER SubjectPublicKeyInfo. */
  publicKeySpki: Buffer;
}

export function generateKey(kind: "P-256" | "P-384" = "P-256"): GeneratedKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: kind });
  return {
    privateKey,
    publicKey,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    publicKeySpki: publicKey.export({ type: "spki", format: "der" }),
  };
}

export async function generateKeyAsync(kind: "P-256" | "P-384" = "P-256"): Promise<GeneratedKey> {
  const { privateKey, publicKey } = await generateKeyPairAsync("ec", { namedCurve: kind });
  return {
    privateKey,
    publicKey,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    publicKeySpki: publicKey.export({ type: "spki", format: "der" }),
  };
}

// ---------------------------------------------------------------------------------------------
// Issuers

/** An issuing CA with everything a child certificate needs pre-encoded. */
export interface PreparedIssuer {
  certPem: string;
  cert: X509Certificate;
  key: KeyObject;
  signatureAlgorithm: SignatureAlgorithm;
  /** The issuer's subject Name exactly as encoded in its certificate: the children's issuer field. */
  subjectNameDer: Buffer;
  /** The children's authorityKeyIdentifier extension, when the issuer has a subjectKeyIdentifier. */
  authorityKeyIdExtension: Buffer | undefined;
  notBefore: Date;
  notAfter: Date;
}

export function prepareIssuer(certPem: string, key: KeyObject | string): PreparedIssuer {
  const cert = new X509Certificate(certPem);
  const privateKey = toPrivateKey(key);
  if (!spkiOf(privateKey).equals(spkiOf(cert.publicKey))) {
    throw new AmbitError(
      "AMBIT_E_CA_STATE",
      `the CA key does not match the CA certificate (${(cert.subject ?? "").replace(/\n/g, ", ")})`,
    );
  }
  const parsed = AsnParser.parse(cert.raw, x.Certificate);
  const subjectNameDer = ser(parsed.tbsCertificate.subject);
  const tbsRaw = parsed.tbsCertificateRaw ? Buffer.from(parsed.tbsCertificateRaw) : undefined;
  if (!tbsRaw || tbsRaw.indexOf(subjectNameDer) < 0) {
    throw new AmbitError(
      "AMBIT_E_CA_STATE",
      "the CA certificate's subject name does not re-encode identically (non-DER encoding)",
    );
  }
  const skiExt = parsed.tbsCertificate.extensions?.find((e) => e.extnID === x.id_ce_subjectKeyIdentifier);
  const ski = skiExt
    ? Buffer.from(AsnParser.parse(skiExt.extnValue.buffer, x.SubjectKeyIdentifier).buffer)
    : undefined;
  return {
    certPem: cert.toString(),
    cert,
    key: privateKey,
    signatureAlgorithm: signatureAlgorithmFor(privateKey),
    subjectNameDer,
    authorityKeyIdExtension: ski ? encodeAuthorityKeyId(ski) : undefined,
    notBefore: new Date(Date.parse(cert.validFrom)),
    notAfter: new Date(Date.parse(cert.validTo)),
  };
}

export interface IssueCertificateOptions {
  /** The issuer, pre-parsed; or issuerCertPem + issuerKey. */
  issuer?: PreparedIssuer;
  issuerCertPem?: string;
  issuerKey?: KeyObject | string;
  subjectPublicKeySpki: Buffer;
  /** Positive serial content bytes; random 16 bytes when absent. */
  serial?: Buffer;
  notBefore: Date;
  notAfter: Date;
  uris?: readonly string[];
  dns?: readonly string[];
  ips?: readonly string[];
  subjectCommonName?: string;
  subjectOrganization?: string;
  isCa?: boolean;
  pathLen?: number;
  /** Leaf EKUs; both default to true. */
  serverAuth?: boolean;
  clientAuth?: boolean;
}

export function issueCertificate(o: IssueCertificateOptions): string {
  return pemEncode("CERTIFICATE", issueCertificateDer(o).der);
}

export function issueCertificateDer(o: IssueCertificateOptions): { der: Buffer; serial: Buffer } {
  const issuer =
    o.issuer ?? prepareIssuer(required(o.issuerCertPem, "issuerCertPem"), required(o.issuerKey, "issuerKey"));
  const serial = o.serial ?? randomSerial();
  const subjectNameDer = encodeName({ organization: o.subjectOrganization, commonName: o.subjectCommonName });
  const subjectEmpty = o.subjectOrganization === undefined && o.subjectCommonName === undefined;
  const exts = o.isCa
    ? caExtensions(o.subjectPublicKeySpki, o.pathLen)
    : leafExtensions({ serverAuth: o.serverAuth ?? true, clientAuth: o.clientAuth ?? true });
  if (issuer.authorityKeyIdExtension) exts.push(issuer.authorityKeyIdExtension);
  if ((o.uris?.length ?? 0) + (o.dns?.length ?? 0) + (o.ips?.length ?? 0) > 0) {
    // RFC 5280 §4.2.1.6: the SAN is critical when the subject is empty.
    exts.push(encodeSan({ uris: o.uris ?? [], dns: o.dns ?? [], ips: o.ips ?? [] }, subjectEmpty));
  }
  const tbs = assembleTbs({
    serial,
    signatureAlgorithm: issuer.signatureAlgorithm,
    issuerNameDer: issuer.subjectNameDer,
    validityDer: encodeValidity(o.notBefore, o.notAfter),
    subjectNameDer,
    spkiDer: o.subjectPublicKeySpki,
    extensionDers: exts,
  });
  return { der: signTbs(tbs, issuer.signatureAlgorithm, issuer.key), serial };
}

function required<T>(v: T | undefined, name: string): T {
  if (v === undefined) throw new TypeError(`issueCertificate: ${name} or issuer is required`);
  return v;
}

const DAY_MS = 86_400_000;
/** Clock skew allowance: certificates are valid from one minute before they are issued. */
export const BACKDATE_MS = 60_000;

/**
 * A self-signed root: subject O=<trustDomain>, CN="Ambit root <random>" (unique per root, so that
 * rotated roots never share a name), CA:TRUE and keyCertSign+cRLSign (critical), subjectKeyIdentifier.
 */
export function createSelfSignedRoot(o: {
  trustDomain: string;
  validityDays?: number;
  key: KeyObject | string;
  now?: Date;
}): string {
  const key = toPrivateKey(o.key);
  const spkiDer = spkiOf(key);
  const alg = signatureAlgorithmFor(key);
  const now = (o.now ?? new Date()).getTime();
  const name = encodeName({
    organization: o.trustDomain,
    commonName: `Ambit root ${randomBytes(8).toString("hex")}`,
  });
  const tbs = assembleTbs({
    serial: randomSerial(),
    signatureAlgorithm: alg,
    issuerNameDer: name,
    validityDer: encodeValidity(
      new Date(now - BACKDATE_MS),
      new Date(now + (o.validityDays ?? 3650) * DAY_MS),
    ),
    subjectNameDer: name,
    spkiDer,
    extensionDers: caExtensions(spkiDer, undefined),
  });
  return pemEncode("CERTIFICATE", signTbs(tbs, alg, key));
}

// ---------------------------------------------------------------------------------------------
// Inspection

export interface CertificateInfo {
  /** Lowercase hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  uris: string[];
  dns: string[];
  ips: string[];
  /** node's fingerprint256 form: uppercase hex pairs joined by ':'. */
  fingerprint256: string;
  issuer: string;
  subject: string;
  subjectOrganization: string | undefined;
  subjectCommonName: string | undefined;
  isCa: boolean;
  /** basicConstraints pathLenConstraint, when present. */
  pathLen: number | undefined;
  /** keyUsage bits (asn1-x509 KeyUsageFlags), when the extension is present. */
  keyUsage: number | undefined;
}

export const KEY_CERT_SIGN = x.KeyUsageFlags.keyCertSign;

/** Facts about a certificate: node's X509Certificate for the basics, the asn1 schemas for SANs and subject fields. */
export function certificateInfo(pemOrCert: string | Buffer | X509Certificate): CertificateInfo {
  const cert = pemOrCert instanceof X509Certificate ? pemOrCert : new X509Certificate(pemOrCert);
  const parsed = AsnParser.parse(cert.raw, x.Certificate);
  const sans = {
    uris: [] as string[],
    dns: [] as string[],
    ips: [] as string[],
    emails: [] as string[],
    otherSans: 0,
  };
  let pathLen: number | undefined;
  let keyUsage: number | undefined;
  for (const ext of parsed.tbsCertificate.extensions ?? []) {
    if (ext.extnID === x.id_ce_subjectAltName)
      collectSans(AsnParser.parse(ext.extnValue.buffer, x.SubjectAlternativeName), sans);
    if (ext.extnID === x.id_ce_basicConstraints)
      pathLen = AsnParser.parse(ext.extnValue.buffer, x.BasicConstraints).pathLenConstraint;
    if (ext.extnID === x.id_ce_keyUsage)
      keyUsage = AsnParser.parse(ext.extnValue.buffer, x.KeyUsage).toNumber();
  }
  const field = (oid: string): string | undefined => {
    for (const rdn of parsed.tbsCertificate.subject)
      for (const atv of rdn) if (atv.type === oid) return atv.value.toString();
    return undefined;
  };
  return {
    serial: cert.serialNumber.toLowerCase(),
    notBefore: new Date(Date.parse(cert.validFrom)),
    notAfter: new Date(Date.parse(cert.validTo)),
    uris: sans.uris,
    dns: sans.dns,
    ips: sans.ips,
    fingerprint256: cert.fingerprint256,
    issuer: cert.issuer ?? "", // node reports an empty name as undefined
    subject: cert.subject ?? "",
    subjectOrganization: field(OID.organization),
    subjectCommonName: field(OID.commonName),
    isCa: cert.ca,
    pathLen,
    keyUsage,
  };
}

/** Normalize a fingerprint ("AB:CD…" or "abcd…") to lowercase hex without separators. */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/:/g, "").toLowerCase();
}
