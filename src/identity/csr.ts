// PKCS#10 certification requests: creating them, and parsing and checking untrusted ones without
// ever throwing — with a byte-template fast path for the CSRs the signing hot path sees.
import { createPublicKey, sign, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import {
  AsnArray,
  AsnParser,
  AsnProp,
  AsnPropTypes,
  AsnSerializer,
  AsnType,
  AsnTypeTypes,
} from "@peculiar/asn1-schema";
import * as x from "@peculiar/asn1-x509";
import { Attributes, CertificationRequest, CertificationRequestInfo } from "@peculiar/asn1-csr";
import { ECParameters } from "@peculiar/asn1-ecc";
import { derFirstChild, derOuterLength, pemBlocks, pemEncode } from "./der.js";
import {
  collectSans,
  CSR_SIGNATURE_ALGS,
  CURVES,
  encodeSan,
  OID,
  ser,
  signatureAlgorithmFor,
  spkiOf,
  toPrivateKey,
} from "./x509-parts.js";

/** A public key's kind; an EC curve is "P-256", "P-384", "P-521", or its OID when unknown. */
export type KeyKind = { type: "ec"; curve: string } | { type: "rsa"; bits: number } | { type: "other" };

/** SPKI DER of a named-curve EC key up to (excluding) the uncompressed point, built once by the asn1 serializer. */
const EC_SPKI_PREFIXES: { prefix: Buffer; curve: (typeof CURVES)[string] }[] = Object.entries(CURVES).map(
  ([oid, curve]) => {
    const point = new Uint8Array(1 + 2 * curve.size);
    const der = Buffer.from(
      AsnSerializer.serialize(
        new x.SubjectPublicKeyInfo({
          algorithm: new x.AlgorithmIdentifier({
            algorithm: OID.ecPublicKey,
            parameters: AsnSerializer.serialize(new ECParameters({ namedCurve: oid })),
          }),
          subjectPublicKey: point.buffer,
        }),
      ),
    );
    return { prefix: der.subarray(0, der.length - point.length), curve };
  },
);

/**
 * The kind of a DER SubjectPublicKeyInfo and a KeyObject for it (undefined when it cannot be
 * imported). EC points and RSA keys go through JWK / PKCS#1 import, several times faster than SPKI.
 */
function importSpki(spkiDer: Buffer): { kind: KeyKind; key: KeyObject | undefined } {
  for (const { prefix, curve } of EC_SPKI_PREFIXES) {
    if (
      spkiDer.length !== prefix.length + 1 + 2 * curve.size ||
      !spkiDer.subarray(0, prefix.length).equals(prefix)
    )
      continue;
    const point = spkiDer.subarray(prefix.length);
    const kind: KeyKind = { type: "ec", curve: curve.name };
    if (point[0] !== 0x04) return { kind, key: undefined };
    const jwk = {
      kty: "EC",
      crv: curve.jwk,
      x: point.subarray(1, 1 + curve.size).toString("base64url"),
      y: point.subarray(1 + curve.size).toString("base64url"),
    };
    try {
      return { kind, key: createPublicKey({ key: jwk, format: "jwk" }) };
    } catch {
      return { kind, key: undefined }; // not a point on the curve
    }
  }
  const spki = AsnParser.parse(spkiDer, x.SubjectPublicKeyInfo);
  const alg = spki.algorithm.algorithm;
  if (alg === OID.ecPublicKey) {
    const params = spki.algorithm.parameters
      ? AsnParser.parse(spki.algorithm.parameters, ECParameters)
      : undefined;
    const oid = params?.namedCurve;
    const curve = oid ? CURVES[oid] : undefined;
    const kind: KeyKind = { type: "ec", curve: curve?.name ?? oid ?? "explicit parameters" };
    if (!curve) return { kind, key: undefined };
    try {
      return { kind, key: createPublicKey({ key: spkiDer, format: "der", type: "spki" }) }; // compressed point
    } catch {
      return { kind, key: undefined };
    }
  }
  if (alg === OID.rsaEncryption) {
    try {
      const key = createPublicKey({ key: Buffer.from(spki.subjectPublicKey), format: "der", type: "pkcs1" });
      return { kind: { type: "rsa", bits: key.asymmetricKeyDetails?.modulusLength ?? 0 }, key };
    } catch {
      return { kind: { type: "rsa", bits: 0 }, key: undefined };
    }
  }
  return { kind: { type: "other" }, key: undefined };
}

/** A PKCS#10 CSR carrying the given URI/DNS SANs, signed with `privateKey` (EC or RSA). */
export function createCsr(
  privateKey: KeyObject | string,
  sans: { uris?: readonly string[]; dns?: readonly string[] },
): string {
  const key = toPrivateKey(privateKey);
  const alg = signatureAlgorithmFor(key);
  const attributes = new Attributes();
  if ((sans.uris?.length ?? 0) + (sans.dns?.length ?? 0) > 0) {
    const extensions = new x.Extensions([
      AsnParser.parse(encodeSan({ uris: sans.uris ?? [], dns: sans.dns ?? [] }, false), x.Extension),
    ]);
    attributes.push(
      new x.Attribute({ type: OID.extensionRequest, values: [AsnSerializer.serialize(extensions)] }),
    );
  }
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new x.Name([]),
    subjectPKInfo: AsnParser.parse(spkiOf(key), x.SubjectPublicKeyInfo),
    attributes,
  });
  const infoDer = ser(info);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: AsnParser.parse(alg.algorithmIdentifierDer, x.AlgorithmIdentifier),
    signature: Uint8Array.from(sign(alg.hash, infoDer, key)).buffer,
  });
  return pemEncode("CERTIFICATE REQUEST", ser(csr));
}

export interface ParsedCsr {
  /** DER SubjectPublicKeyInfo, byte-exact as in the CSR. */
  publicKeySpki: Buffer;
  keyKind: KeyKind;
  uris: string[];
  dns: string[];
  ips: string[];
  emails: string[];
  /** SANs of other kinds (directoryName, otherName, registeredID…). */
  otherSans: number;
  signatureAlgorithm: string;
  signatureValid: boolean;
}

export type ParseCsrResult =
  { ok: true; csr: ParsedCsr } | { ok: false; code: "AMBIT_E_CSR_INVALID"; reason: string };

/** Bounds for untrusted input. */
const MAX_CSR_PEM_CHARS = 32 * 1024;
const BER_LIMITS = { maxDepth: 24, maxNodes: 2000, maxContentLength: 16 * 1024 };

/**
 * A lean PKCS#10 schema for the hot path: the subject is skipped and the SubjectPublicKeyInfo kept
 * as its exact DER (it goes into the certificate unchanged). Same structure as @peculiar/asn1-csr's
 * CertificationRequest, declared without decorator syntax.
 */
class CsrAttributes extends AsnArray<x.Attribute> {
  constructor(items?: x.Attribute[]) {
    super(items);
    Object.setPrototypeOf(this, CsrAttributes.prototype);
  }
}
AsnType({ type: AsnTypeTypes.Set, itemType: x.Attribute })(CsrAttributes);

class LeanCertificationRequestInfo {
  version = 0;
  subject = new ArrayBuffer(0);
  subjectPKInfo = new ArrayBuffer(0);
  attributes = new CsrAttributes();
}
AsnProp({ type: AsnPropTypes.Integer })(LeanCertificationRequestInfo.prototype, "version");
AsnProp({ type: AsnPropTypes.Any })(LeanCertificationRequestInfo.prototype, "subject");
AsnProp({ type: AsnPropTypes.Any })(LeanCertificationRequestInfo.prototype, "subjectPKInfo");
AsnProp({ type: x.Attribute, repeated: "set", context: 0, implicit: true })(
  LeanCertificationRequestInfo.prototype,
  "attributes",
);

class LeanCertificationRequest {
  certificationRequestInfo = new LeanCertificationRequestInfo();
  signatureAlgorithm = new x.AlgorithmIdentifier();
  signature = new ArrayBuffer(0);
}
AsnProp({ type: LeanCertificationRequestInfo })(
  LeanCertificationRequest.prototype,
  "certificationRequestInfo",
);
AsnProp({ type: x.AlgorithmIdentifier })(LeanCertificationRequest.prototype, "signatureAlgorithm");
AsnProp({ type: AsnPropTypes.BitString })(LeanCertificationRequest.prototype, "signature");

/**
 * The extensionRequest values a standard encoder produces for a CSR whose only extension is a URI
 * SAN naming `uri` (non-critical and critical variants), serialized once by asn1-x509 and cached.
 */
const expectedRequests = new Map<string, Buffer[]>();
function expectedExtensionRequests(uri: string): Buffer[] {
  let v = expectedRequests.get(uri);
  if (!v) {
    if (expectedRequests.size >= 10_000) expectedRequests.clear();
    v = [false, true].map((critical) =>
      ser(new x.Extensions([AsnParser.parse(encodeSan({ uris: [uri] }, critical), x.Extension)])),
    );
    expectedRequests.set(uri, v);
  }
  return v;
}

/**
 * A CSR as a standard encoder writes it for one URI SAN, an empty subject and a P-256/P-384 key:
 * the certificationRequestInfo around the EC point, serialized by asn1-csr with a placeholder
 * point, and the signature algorithm that follows it.
 */
interface CsrTemplate {
  head: Buffer;
  pointLength: number;
  tail: Buffer;
  spkiPrefixLength: number;
  signatureAlgorithmDer: Buffer;
  signatureAlgorithm: string;
}

const FAST_CURVES: Record<string, string> = { "P-256": OID.ecdsaSha256, "P-384": OID.ecdsaSha384 };
const csrTemplates = new Map<string, CsrTemplate[]>();

function csrTemplatesFor(uri: string): CsrTemplate[] {
  let v = csrTemplates.get(uri);
  if (v) return v;
  if (csrTemplates.size >= 10_000) csrTemplates.clear();
  v = [];
  for (const { prefix, curve } of EC_SPKI_PREFIXES) {
    const sigOid = FAST_CURVES[curve.name];
    if (!sigOid) continue;
    const point = Buffer.alloc(1 + 2 * curve.size);
    for (const extensionRequest of expectedExtensionRequests(uri)) {
      const info = ser(
        new CertificationRequestInfo({
          version: 0,
          subject: new x.Name([]),
          subjectPKInfo: AsnParser.parse(Buffer.concat([prefix, point]), x.SubjectPublicKeyInfo),
          attributes: new Attributes([
            new x.Attribute({
              type: OID.extensionRequest,
              values: [Uint8Array.from(extensionRequest).buffer],
            }),
          ]),
        }),
      );
      const at = info.indexOf(prefix);
      if (at < 0) continue;
      const pointAt = at + prefix.length;
      v.push({
        head: info.subarray(0, pointAt),
        pointLength: point.length,
        tail: info.subarray(pointAt + point.length),
        spkiPrefixLength: prefix.length,
        signatureAlgorithmDer: ser(new x.AlgorithmIdentifier({ algorithm: sigOid })),
        signatureAlgorithm: sigOid,
      });
    }
  }
  csrTemplates.set(uri, v);
  return v;
}

/**
 * The signing hot path: when the CSR is byte-for-byte a template for `uri` (only the EC point and
 * the signature vary), read those two at their places instead of decoding the whole structure.
 * Returns undefined whenever anything differs; the caller then parses in full.
 */
function parseCsrByTemplate(der: Buffer, uri: string): ParsedCsr | undefined {
  const info = derFirstChild(der);
  if (!info) return undefined;
  const after = der.subarray(info.byteOffset - der.byteOffset + info.length);
  for (const t of csrTemplatesFor(uri)) {
    if (info.length !== t.head.length + t.pointLength + t.tail.length) continue;
    if (
      !info.subarray(0, t.head.length).equals(t.head) ||
      !info.subarray(info.length - t.tail.length).equals(t.tail)
    )
      continue;
    if (!after.subarray(0, t.signatureAlgorithmDer.length).equals(t.signatureAlgorithmDer)) return undefined;
    const bits = after.subarray(t.signatureAlgorithmDer.length);
    if (bits[0] !== 0x03 || derOuterLength(bits) !== bits.length) return undefined;
    const header = (bits[1] as number) < 0x80 ? 2 : 2 + ((bits[1] as number) & 0x7f);
    if (bits[header] !== 0x00) return undefined; // unused-bits octet
    const spki = Buffer.from(
      info.subarray(t.head.length - t.spkiPrefixLength, t.head.length + t.pointLength),
    );
    const { kind, key } = importSpki(spki);
    const alg = CSR_SIGNATURE_ALGS[t.signatureAlgorithm];
    let signatureValid = false;
    if (alg && key) {
      try {
        signatureValid = verify(alg.hash, info, key, bits.subarray(header + 1));
      } catch {
        signatureValid = false;
      }
    }
    return {
      publicKeySpki: spki,
      keyKind: kind,
      uris: [uri],
      dns: [],
      ips: [],
      emails: [],
      otherSans: 0,
      signatureAlgorithm: t.signatureAlgorithm,
      signatureValid,
    };
  }
  return undefined;
}

/**
 * Parse and check a PEM CSR. Never throws: malformed input yields AMBIT_E_CSR_INVALID.
 * `expectedUri` is a hint for the signing hot path: when the CSR (or its extension request) is
 * exactly the DER a standard encoder writes for that one URI SAN, byte comparisons with templates
 * serialized by the asn1 schemas replace decoding. The result is the same with or without the hint.
 */
export function parseCsr(pem: string, expectedUri?: string): ParseCsrResult {
  const invalid = (reason: string): ParseCsrResult => ({ ok: false, code: "AMBIT_E_CSR_INVALID", reason });
  if (typeof pem !== "string") return invalid("the CSR is not a string");
  if (pem.length > MAX_CSR_PEM_CHARS)
    return invalid(`the CSR is ${pem.length} characters (at most ${MAX_CSR_PEM_CHARS})`);
  const blocks = pemBlocks(pem);
  if (!blocks) return invalid("the CSR's PEM armor or base64 is malformed");
  const reqs = blocks.filter(
    (b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST",
  );
  if (reqs.length !== 1 || blocks.length !== 1) {
    return invalid(
      `expected exactly one PEM "CERTIFICATE REQUEST" block, found ${blocks.map((b) => b.label).join(", ") || "none"}`,
    );
  }
  const der = (reqs[0] as { der: Buffer }).der;
  if (derOuterLength(der) !== der.length)
    return invalid("the CSR's DER is truncated or followed by extra bytes");
  if (expectedUri !== undefined) {
    const fast = parseCsrByTemplate(der, expectedUri);
    if (fast) return { ok: true, csr: fast };
  }
  let csr: LeanCertificationRequest;
  try {
    csr = AsnParser.parse(der, LeanCertificationRequest, { berOptions: BER_LIMITS });
  } catch (err) {
    return invalid(`not a PKCS#10 certification request: ${(err as Error).message}`);
  }
  try {
    // The signature covers the info exactly as sent: take its bytes, not a re-encoding.
    const infoDer = derFirstChild(der);
    if (!infoDer) return invalid("the CSR has no certificationRequestInfo");
    return { ok: true, csr: inspectCsr(csr, infoDer, expectedUri) };
  } catch (err) {
    return invalid(`malformed CSR content: ${(err as Error).message}`);
  }
}

function inspectCsr(
  csr: LeanCertificationRequest,
  infoDer: Buffer,
  expectedUri: string | undefined,
): ParsedCsr {
  const info = csr.certificationRequestInfo;
  if (info.version !== 0) throw new Error(`unsupported CSR version ${info.version}`);
  const publicKeySpki = Buffer.from(info.subjectPKInfo);
  const { kind, key } = importSpki(publicKeySpki);
  const out: ParsedCsr = {
    publicKeySpki,
    keyKind: kind,
    uris: [],
    dns: [],
    ips: [],
    emails: [],
    otherSans: 0,
    signatureAlgorithm: csr.signatureAlgorithm.algorithm,
    signatureValid: false,
  };
  let sanSeen = false;
  for (const attr of info.attributes) {
    if (attr.type !== OID.extensionRequest) continue;
    for (const value of attr.values) {
      if (
        !sanSeen &&
        expectedUri !== undefined &&
        expectedExtensionRequests(expectedUri).some((e) => e.equals(Buffer.from(value)))
      ) {
        sanSeen = true;
        out.uris.push(expectedUri);
        continue;
      }
      for (const ext of AsnParser.parse(value, x.Extensions, { berOptions: BER_LIMITS })) {
        if (ext.extnID !== x.id_ce_subjectAltName) continue;
        if (sanSeen) throw new Error("more than one subjectAltName extension");
        sanSeen = true;
        collectSans(
          AsnParser.parse(ext.extnValue.buffer, x.SubjectAlternativeName, { berOptions: BER_LIMITS }),
          out,
        );
      }
    }
  }
  const alg = CSR_SIGNATURE_ALGS[out.signatureAlgorithm];
  if (alg && key && key.asymmetricKeyType === alg.keyType) {
    try {
      out.signatureValid = verify(alg.hash, infoDer, key, Buffer.from(csr.signature));
    } catch {
      out.signatureValid = false;
    }
  }
  return out;
}
