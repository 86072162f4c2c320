// PKI helpers: keys, CSR round trips and tamper detection, hostile CSR input, the pre-encoded TBS
// assembly against the asn1-x509 serializer, roots, leaves and certificate inspection.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import { AsnParser, AsnSerializer } from "@peculiar/asn1-schema";
import * as x from "@peculiar/asn1-x509";
import { derTlv, pemBlocks, pemEncode, splitPemCertificates } from "../../../src/identity/der.js";
import {
  assembleTbs,
  certificateInfo,
  createCsr,
  encodeName,
  encodeSan,
  encodeValidity,
  generateKey,
  issueCertificate,
  leafExtensions,
  parseCsr,
  prepareIssuer,
  randomSerial,
  signatureAlgorithmFor,
  subjectKeyIdOf,
} from "../../../src/identity/pki.js";
import { ID_A, ID_B, makeRoot, tamperCsr } from "./support.js";

describe("keys", () => {
  test("generateKey gives a P-256 key pair and a PKCS#8 PEM", () => {
    const k = generateKey("P-256");
    assert.equal(k.privateKey.asymmetricKeyType, "ec");
    assert.equal(k.privateKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.match(k.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok(k.publicKeySpki.equals(k.publicKey.export({ type: "spki", format: "der" })));
  });
});

describe("CSR round trip", () => {
  test("URI and DNS SANs, key kind and a valid signature come back", () => {
    const k = generateKey("P-256");
    const pem = createCsr(k.privateKey, { uris: [ID_A], dns: ["a.example"] });
    assert.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const r = parseCsr(pem);
    assert.ok(r.ok);
    assert.deepEqual(r.csr.uris, [ID_A]);
    assert.deepEqual(r.csr.dns, ["a.example"]);
    assert.deepEqual(r.csr.ips, []);
    assert.deepEqual(r.csr.keyKind, { type: "ec", curve: "P-256" });
    assert.equal(r.csr.signatureValid, true);
    assert.ok(r.csr.publicKeySpki.equals(k.publicKeySpki));
  });

  test("P-384 and RSA keys", () => {
    const p384 = parseCsr(createCsr(generateKey("P-384").privateKey, { uris: [ID_A] }));
    assert.ok(p384.ok);
    assert.deepEqual(p384.csr.keyKind, { type: "ec", curve: "P-384" });
    assert.equal(p384.csr.signatureValid, true);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
    const r = parseCsr(createCsr(rsa, { uris: [ID_A] }));
    assert.ok(r.ok);
    assert.deepEqual(r.csr.keyKind, { type: "rsa", bits: 1024 });
    assert.equal(r.csr.signatureValid, true);
  });

  test("a flipped byte in the signed part makes the signature invalid", () => {
    const pem = createCsr(generateKey().privateKey, { uris: [ID_A] });
    const der = (pemBlocks(pem) ?? [])[0]?.der ?? Buffer.alloc(0);
    const at = der.indexOf(Buffer.from("payments"));
    assert.ok(at > 0);
    for (const hint of [undefined, ID_A]) {
      const r = parseCsr(tamperCsr(pem, at), hint);
      assert.ok(r.ok, "still well-formed");
      assert.deepEqual(r.csr.uris, ["spiffe://cluster.local/ns/shop/sa/qayments"]);
      assert.equal(r.csr.signatureValid, false);
    }
    const sig = parseCsr(tamperCsr(pem, -3), ID_A);
    assert.ok(sig.ok);
    assert.equal(sig.csr.signatureValid, false);
  });

  test("the hinted fast path gives exactly the full parse's result", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const base = createCsr(generateKey().privateKey, { uris: [ID_A] });
    const cases = [
      base,
      tamperCsr(base, -3),
      tamperCsr(base, 40),
      createCsr(generateKey("P-384").privateKey, { uris: [ID_A] }),
      createCsr(rsa, { uris: [ID_A] }),
      createCsr(generateKey().privateKey, { uris: [ID_A, ID_B] }),
      createCsr(generateKey().privateKey, { uris: [ID_A], dns: ["x.example"] }),
      createCsr(generateKey().privateKey, { uris: [] }),
      createCsr(generateKey().privateKey, { uris: [ID_B] }),
    ];
    for (const pem of cases) {
      const full = parseCsr(pem);
      assert.deepEqual(parseCsr(pem, ID_A), full);
      assert.deepEqual(parseCsr(pem, ID_B), full);
    }
  });
});

describe("hostile CSR input", () => {
  const invalid = (input: unknown): void => {
    const r = parseCsr(input as string);
    assert.equal(r.ok, false, String(input).slice(0, 60));
    if (!r.ok) assert.equal(r.code, "AMBIT_E_CSR_INVALID");
  };

  test("garbage, wrong PEM types, bad base64, truncation and trailing bytes are AMBIT_E_CSR_INVALID", () => {
    const good = createCsr(generateKey().privateKey, { uris: [ID_A] });
    const der = (pemBlocks(good) ?? [])[0]?.der ?? Buffer.alloc(0);
    invalid("hello");
    invalid("");
    invalid(undefined);
    invalid(42);
    invalid("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
    invalid("-----BEGIN CERTIFICATE REQUEST-----\n%%%%\n-----END CERTIFICATE REQUEST-----\n");
    invalid(makeRoot().certPem);
    invalid(good + good);
    invalid(pemEncode("CERTIFICATE REQUEST", der.subarray(0, der.length - 5)));
    invalid(pemEncode("CERTIFICATE REQUEST", Buffer.concat([der, Buffer.from([0, 0])])));
    invalid(pemEncode("CERTIFICATE REQUEST", derTlv(0x30, [Buffer.from([0x02, 0x01, 0x00])])));
    invalid("x".repeat(100_000));
  });

  test("random corruption never throws", () => {
    const good = createCsr(generateKey().privateKey, { uris: [ID_A] });
    const der = (pemBlocks(good) ?? [])[0]?.der ?? Buffer.alloc(0);
    for (let i = 0; i < 400; i++) {
      const d = Buffer.from(der);
      const n = 1 + (i % 4);
      for (let j = 0; j < n; j++) d[randomBytes(2).readUInt16BE() % d.length] = randomBytes(1)[0] ?? 0;
      const pem = pemEncode(
        "CERTIFICATE REQUEST",
        i % 7 === 0 ? d.subarray(0, randomBytes(2).readUInt16BE() % d.length) : d,
      );
      assert.doesNotThrow(() => parseCsr(pem));
      assert.doesNotThrow(() => parseCsr(pem, ID_A));
    }
  });
});

describe("certificate assembly", () => {
  test("assembleTbs is byte-identical to serializing asn1-x509's TBSCertificate", () => {
    const root = makeRoot();
    const issuer = prepareIssuer(root.certPem, root.key.privateKey);
    const serial = randomSerial();
    const spki = generateKey().publicKeySpki;
    const nb = new Date(Date.UTC(2030, 0, 1, 0, 0, 0));
    const na = new Date(Date.UTC(2030, 0, 2, 0, 0, 0));
    const exts = [
      ...leafExtensions({ serverAuth: true, clientAuth: true }),
      encodeSan({ uris: [ID_A] }, true),
    ];
    const mine = assembleTbs({
      serial,
      signatureAlgorithm: issuer.signatureAlgorithm,
      issuerNameDer: issuer.subjectNameDer,
      validityDer: encodeValidity(nb, na),
      subjectNameDer: encodeName({}),
      spkiDer: spki,
      extensionDers: exts,
    });
    const reference = new x.TBSCertificate({
      version: x.Version.v3,
      serialNumber: Uint8Array.from(serial).buffer,
      signature: new x.AlgorithmIdentifier({ algorithm: "1.2.840.10045.4.3.2" }),
      issuer: AsnParser.parse(issuer.subjectNameDer, x.Name),
      validity: new x.Validity({ notBefore: nb, notAfter: na }),
      subject: new x.Name([]),
      subjectPublicKeyInfo: AsnParser.parse(spki, x.SubjectPublicKeyInfo),
      extensions: new x.Extensions(exts.map((e) => AsnParser.parse(e, x.Extension))),
    });
    assert.ok(mine.equals(Buffer.from(AsnSerializer.serialize(reference))));
  });

  test("a self-signed root: O=<trust domain>, unique CN, CA, keyCertSign, subjectKeyIdentifier", () => {
    const a = makeRoot("example.org");
    const b = makeRoot("example.org");
    const cert = new X509Certificate(a.certPem);
    assert.equal(cert.ca, true);
    assert.ok(cert.checkIssued(cert) && cert.verify(cert.publicKey));
    const info = certificateInfo(a.certPem);
    assert.equal(info.subjectOrganization, "example.org");
    assert.match(info.subjectCommonName ?? "", /^Ambit root [0-9a-f]{16}$/);
    assert.notEqual(info.subjectCommonName, certificateInfo(b.certPem).subjectCommonName);
    assert.equal(info.keyUsage, x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign);
    const lifetimeDays = (info.notAfter.getTime() - info.notBefore.getTime()) / 86_400_000;
    assert.ok(lifetimeDays > 3649.9 && lifetimeDays < 3650.1, String(lifetimeDays));
    const ski = subjectKeyIdOf(a.key.publicKeySpki);
    assert.equal(ski.length, 20);
  });

  test("a leaf: only the URI SAN, CA:false, signed by the issuer, positive 16-byte serial", () => {
    const root = makeRoot();
    const nb = new Date(Date.now() - 60_000);
    const na = new Date(Date.now() + 3_600_000);
    const pem = issueCertificate({
      issuerCertPem: root.certPem,
      issuerKey: root.key.privateKeyPem,
      subjectPublicKeySpki: generateKey().publicKeySpki,
      notBefore: nb,
      notAfter: na,
      uris: [ID_A],
    });
    const cert = new X509Certificate(pem);
    const rootCert = new X509Certificate(root.certPem);
    assert.ok(cert.checkIssued(rootCert));
    assert.ok(cert.verify(rootCert.publicKey));
    assert.equal(cert.ca, false);
    assert.equal(certificateInfo(pem).subject, "", "empty subject");
    assert.equal(cert.subjectAltName, `URI:${ID_A}`);
    const info = certificateInfo(pem);
    assert.match(info.serial, /^[4-7][0-9a-f]{31}$/);
    assert.equal(info.notBefore.getTime(), Math.floor(nb.getTime() / 1000) * 1000);
    assert.equal(info.keyUsage, x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyEncipherment);
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  });

  test("prepareIssuer refuses a key that does not match the certificate", () => {
    const root = makeRoot();
    assert.throws(() => prepareIssuer(root.certPem, generateKey().privateKey), { code: "AMBIT_E_CA_STATE" });
  });

  test("signature algorithms follow the key", () => {
    assert.equal(signatureAlgorithmFor(generateKey("P-256").privateKey).hash, "sha256");
    assert.equal(signatureAlgorithmFor(generateKey("P-384").privateKey).hash, "sha384");
    assert.equal(
      signatureAlgorithmFor(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey).oid,
      "1.2.840.113549.1.1.11",
    );
  });

  test("certificateInfo: serial, SANs, fingerprint, issuer and subject", () => {
    const root = makeRoot();
    const pem = issueCertificate({
      issuerCertPem: root.certPem,
      issuerKey: root.key.privateKey,
      subjectPublicKeySpki: generateKey().publicKeySpki,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 60_000),
      dns: ["cp.example", "localhost"],
      ips: ["127.0.0.1", "::1"],
      subjectCommonName: "n1",
      subjectOrganization: "ambit-node",
    });
    const info = certificateInfo(pem);
    const cert = new X509Certificate(pem);
    assert.equal(info.serial, cert.serialNumber.toLowerCase());
    assert.deepEqual(info.dns, ["cp.example", "localhost"]);
    assert.deepEqual(info.ips, ["127.0.0.1", "::1"]);
    assert.deepEqual(info.uris, []);
    assert.equal(info.fingerprint256, cert.fingerprint256);
    assert.equal(info.subject, "O=ambit-node\nCN=n1");
    assert.equal(info.subjectCommonName, "n1");
    assert.equal(info.issuer, cert.issuer);
    assert.equal(info.isCa, false);
  });

  test("splitPemCertificates normalizes a bundle", () => {
    const a = makeRoot().certPem;
    const b = makeRoot().certPem;
    assert.deepEqual(splitPemCertificates(`junk\n${a}\r\n${b}`), [a, b]);
  });
});
