// Encoders for the parts of X.509 certificates and CSRs — algorithm identifiers, names, validity,
// extensions, serials — each produced by the @peculiar/asn1-* serializers, and TBS assembly from them.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { AsnParser, AsnSerializer, OctetString } from "@peculiar/asn1-schema";
import * as x from "@peculiar/asn1-x509";
import { AmbitError } from "../core/errors.js";
import { derTlv } from "./der.js";

export const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ed25519: "1.3.101.112",
  ecdsaSha256: "1.2.840.10045.4.3.2",
  ecdsaSha384: "1.2.840.10045.4.3.3",
  ecdsaSha512: "1.2.840.10045.4.3.4",
  rsaSha256: "1.2.840.113549.1.1.11",
  rsaSha384: "1.2.840.113549.1.1.12",
  rsaSha512: "1.2.840.113549.1.1.13",
  extensionRequest: "1.2.840.113549.1.9.14",
  organization: "2.5.4.10",
  commonName: "2.5.4.3",
} as const;

export const CURVES: Record<string, { name: string; jwk: string; size: number }> = {
  "1.2.840.10045.3.1.7": { name: "P-256", jwk: "P-256", size: 32 },
  "1.3.132.0.34": { name: "P-384", jwk: "P-384", size: 48 },
  "1.3.132.0.35": { name: "P-521", jwk: "P-521", size: 66 },
};

/** Signature algorithms accepted on CSRs: OID → hash and the key type it needs. */
export const CSR_SIGNATURE_ALGS: Record<string, { hash: string; keyType: "ec" | "rsa" }> = {
  [OID.ecdsaSha256]: { hash: "sha256", keyType: "ec" },
  [OID.ecdsaSha384]: { hash: "sha384", keyType: "ec" },
  [OID.ecdsaSha512]: { hash: "sha512", keyType: "ec" },
  [OID.rsaSha256]: { hash: "sha256", keyType: "rsa" },
  [OID.rsaSha384]: { hash: "sha384", keyType: "rsa" },
  [OID.rsaSha512]: { hash: "sha512", keyType: "rsa" },
};

/** How a key signs: the AlgorithmIdentifier (pre-encoded) and the digest for node's crypto.sign. */
export interface SignatureAlgorithm {
  oid: string;
  hash: string | null;
  algorithmIdentifierDer: Buffer;
}

export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const make = (oid: string, hash: string | null, nullParams: boolean): SignatureAlgorithm => ({
    oid,
    hash,
    algorithmIdentifierDer: Buffer.from(
      AsnSerializer.serialize(
        new x.AlgorithmIdentifier({ algorithm: oid, ...(nullParams ? { parameters: null } : {}) }),
      ),
    ),
  });
  switch (key.asymmetricKeyType) {
    case "ec": {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === "prime256v1") return make(OID.ecdsaSha256, "sha256", false);
      if (curve === "secp384r1") return make(OID.ecdsaSha384, "sha384", false);
      if (curve === "secp521r1") return make(OID.ecdsaSha512, "sha512", false);
      throw new AmbitError(
        "AMBIT_E_CA_STATE",
        `unsupported EC curve ${curve ?? "?"} for a CA key (use P-256, P-384 or P-521)`,
      );
    }
    case "rsa":
      return make(OID.rsaSha256, "sha256", true);
    case "ed25519":
      return make(OID.ed25519, null, false);
    default:
      throw new AmbitError(
        "AMBIT_E_CA_STATE",
        `unsupported CA key type ${key.asymmetricKeyType ?? "?"} (use EC, RSA or Ed25519)`,
      );
  }
}

export function toPrivateKey(key: KeyObject | string): KeyObject {
  return typeof key === "string" ? createPrivateKey(key) : key;
}

/** The DER SubjectPublicKeyInfo of a private or public key. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return pub.export({ type: "spki", format: "der" });
}

const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]); // [0] EXPLICIT INTEGER 2
const ZERO_UNUSED_BITS = Buffer.from([0x00]);

export const ser = (v: object): Buffer => Buffer.from(AsnSerializer.serialize(v));

export function encodeExtension(oid: string, critical: boolean, value: object): Buffer {
  return ser(
    new x.Extension({ extnID: oid, critical, extnValue: new OctetString(AsnSerializer.serialize(value)) }),
  );
}

export function encodeName(attrs: {
  organization?: string | undefined;
  commonName?: string | undefined;
}): Buffer {
  const rdns: x.RelativeDistinguishedName[] = [];
  const add = (type: string, value: string): void => {
    rdns.push(
      new x.RelativeDistinguishedName([
        new x.AttributeTypeAndValue({ type, value: new x.AttributeValue({ utf8String: value }) }),
      ]),
    );
  };
  if (attrs.organization !== undefined) add(OID.organization, attrs.organization);
  if (attrs.commonName !== undefined) add(OID.commonName, attrs.commonName);
  return ser(new x.Name(rdns));
}

export function encodeValidity(notBefore: Date, notAfter: Date): Buffer {
  return ser(new x.Validity({ notBefore, notAfter }));
}

export function encodeSan(
  sans: { uris?: readonly string[]; dns?: readonly string[]; ips?: readonly string[] },
  critical: boolean,
): Buffer {
  const names: x.GeneralName[] = [];
  for (const u of sans.uris ?? []) names.push(new x.GeneralName({ uniformResourceIdentifier: u }));
  for (const d of sans.dns ?? []) names.push(new x.GeneralName({ dNSName: d }));
  for (const ip of sans.ips ?? []) {
    if (isIP(ip) === 0) throw new AmbitError("AMBIT_E_INVALID_VALUE", `"${ip}" is not an IP address`);
    names.push(new x.GeneralName({ iPAddress: ip }));
  }
  return encodeExtension(x.id_ce_subjectAltName, critical, new x.SubjectAlternativeName(names));
}

export function encodeAuthorityKeyId(keyId: Uint8Array): Buffer {
  return encodeExtension(
    x.id_ce_authorityKeyIdentifier,
    false,
    new x.AuthorityKeyIdentifier({ keyIdentifier: new x.KeyIdentifier(keyId) }),
  );
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function subjectKeyIdOf(spkiDer: Buffer): Buffer {
  const spki = AsnParser.parse(spkiDer, x.SubjectPublicKeyInfo);
  return createHash("sha1").update(Buffer.from(spki.subjectPublicKey)).digest();
}

/** The constant extensions of a workload/server leaf, in the order they appear. */
export function leafExtensions(opts: { serverAuth: boolean; clientAuth: boolean }): Buffer[] {
  const out = [
    encodeExtension(
      x.id_ce_keyUsage,
      true,
      new x.KeyUsage(x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyEncipherment),
    ),
  ];
  const ekus = [
    ...(opts.serverAuth ? [x.id_kp_serverAuth] : []),
    ...(opts.clientAuth ? [x.id_kp_clientAuth] : []),
  ];
  if (ekus.length > 0) out.push(encodeExtension(x.id_ce_extKeyUsage, false, new x.ExtendedKeyUsage(ekus)));
  out.push(encodeExtension(x.id_ce_basicConstraints, true, new x.BasicConstraints({ cA: false })));
  return out;
}

export function caExtensions(spkiDer: Buffer, pathLen: number | undefined): Buffer[] {
  return [
    encodeExtension(
      x.id_ce_keyUsage,
      true,
      new x.KeyUsage(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign),
    ),
    encodeExtension(
      x.id_ce_basicConstraints,
      true,
      new x.BasicConstraints({ cA: true, ...(pathLen !== undefined ? { pathLenConstraint: pathLen } : {}) }),
    ),
    encodeExtension(x.id_ce_subjectKeyIdentifier, false, new x.SubjectKeyIdentifier(subjectKeyIdOf(spkiDer))),
  ];
}

/** CSPRNG output drawn in blocks: one randomBytes call per 256 serials. */
let randomPool = Buffer.alloc(0);
let randomPoolAt = 0;

/** 16 random bytes, positive and of fixed DER length (top bit clear, next bit set). */
export function randomSerial(): Buffer {
  if (randomPoolAt + 16 > randomPool.length) {
    randomPool = randomBytes(16 * 256);
    randomPoolAt = 0;
  }
  const b = Buffer.from(randomPool.subarray(randomPoolAt, randomPoolAt + 16));
  randomPoolAt += 16;
  b[0] = ((b[0] as number) & 0x7f) | 0x40;
  return b;
}

export interface TbsParts {
  /** Content octets of the positive serial INTEGER (minimal encoding). */
  serial: Uint8Array;
  signatureAlgorithm: SignatureAlgorithm;
  issuerNameDer: Uint8Array;
  validityDer: Uint8Array;
  subjectNameDer: Uint8Array;
  spkiDer: Uint8Array;
  extensionDers: readonly Uint8Array[];
}

/** TBSCertificate (v3) from pre-encoded parts; byte-identical to serializing the asn1-x509 TBSCertificate. */
export function assembleTbs(p: TbsParts): Buffer {
  return derTlv(0x30, [
    VERSION_V3,
    derTlv(0x02, [p.serial]),
    p.signatureAlgorithm.algorithmIdentifierDer,
    p.issuerNameDer,
    p.validityDer,
    p.subjectNameDer,
    p.spkiDer,
    derTlv(0xa3, [derTlv(0x30, p.extensionDers)]),
  ]);
}

/** Sign a TBSCertificate with node's synchronous crypto.sign (ECDSA signatures come out in DER). */
export function signTbs(tbs: Buffer, alg: SignatureAlgorithm, key: KeyObject): Buffer {
  const signature = sign(alg.hash, tbs, key);
  return derTlv(0x30, [tbs, alg.algorithmIdentifierDer, derTlv(0x03, [ZERO_UNUSED_BITS, signature])]);
}

export function collectSans(
  names: Iterable<x.GeneralName>,
  out: { uris: string[]; dns: string[]; ips: string[]; emails: string[]; otherSans: number },
): void {
  for (const n of names) {
    if (n.uniformResourceIdentifier !== undefined) out.uris.push(n.uniformResourceIdentifier);
    else if (n.dNSName !== undefined) out.dns.push(n.dNSName);
    else if (n.iPAddress !== undefined) out.ips.push(n.iPAddress);
    else if (n.rfc822Name !== undefined) out.emails.push(n.rfc822Name);
    else out.otherSans++;
  }
}
