// Helpers shared by the PKI/CA unit tests: temporary state directories, a settable clock, test CAs
// built with the project's own pki helpers, and CSR tampering.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pemBlocks, pemEncode } from "../../../src/identity/der.js";
import {
  createCsr,
  createSelfSignedRoot,
  generateKey,
  issueCertificate,
  type GeneratedKey,
} from "../../../src/identity/pki.js";

export const TD = "cluster.local";
export const ID_A = `spiffe://${TD}/ns/shop/sa/payments`;
export const ID_B = `spiffe://${TD}/ns/shop/sa/orders`;
export const NODE_ID = `spiffe://${TD}/ns/ambit-system/sa/ambit-node`;
export const T0 = Date.UTC(2030, 0, 1);

export function tempDir(prefix = "ambit-id-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A clock the test moves by hand. */
export class ManualClock {
  constructor(public t = T0) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export function csrFor(uris: string[], dns: string[] = [], key = generateKey("P-256").privateKey): string {
  return createCsr(key, { uris, dns });
}

/** Flip one byte of a CSR's DER at `offset` (negative counts from the end) and re-armor it. */
export function tamperCsr(pem: string, offset: number): string {
  const der = Buffer.from((pemBlocks(pem) ?? [])[0]?.der ?? Buffer.alloc(0));
  const i = offset < 0 ? der.length + offset : offset;
  der[i] = (der[i] ?? 0) ^ 0x01;
  return pemEncode("CERTIFICATE REQUEST", der);
}

export interface TestCa {
  key: GeneratedKey;
  certPem: string;
}

/** A self-signed root made with the project's pki helpers. */
export function makeRoot(trustDomain = TD, now = new Date()): TestCa {
  const key = generateKey("P-256");
  return { key, certPem: createSelfSignedRoot({ trustDomain, key: key.privateKey, now }) };
}

/** An intermediate CA under `parent`. */
export function makeIntermediate(parent: TestCa, name: string, now = new Date(), pathLen = 0): TestCa {
  const key = generateKey("P-256");
  const certPem = issueCertificate({
    issuerCertPem: parent.certPem,
    issuerKey: parent.key.privateKey,
    subjectPublicKeySpki: key.publicKeySpki,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 365 * 86_400_000),
    subjectOrganization: "Example Corp",
    subjectCommonName: name,
    isCa: true,
    pathLen,
  });
  return { key, certPem };
}

/** A leaf under `issuer` with the given URI SANs, made directly (not through the CA's policy). */
export function makeLeaf(issuer: TestCa, uris: string[], notBefore: Date, notAfter: Date): TestCa {
  const key = generateKey("P-256");
  const certPem = issueCertificate({
    issuerCertPem: issuer.certPem,
    issuerKey: issuer.key.privateKey,
    subjectPublicKeySpki: key.publicKeySpki,
    notBefore,
    notAfter,
    uris,
  });
  return { key, certPem };
}

/** Write a plug-in CA's files into `dir`; returns the paths. */
export function writePluginFiles(
  dir: string,
  ca: TestCa,
  chain: string[] = [],
  keyMode = 0o600,
): { certFile: string; keyFile: string; chainFile?: string } {
  const certFile = join(dir, "ca-cert.pem");
  const keyFile = join(dir, "ca-key.pem");
  writeFileSync(certFile, ca.certPem);
  writeFileSync(keyFile, ca.key.privateKeyPem);
  chmodSync(keyFile, keyMode);
  if (chain.length === 0) return { certFile, keyFile };
  const chainFile = join(dir, "cert-chain.pem");
  writeFileSync(chainFile, chain.join(""));
  return { certFile, keyFile, chainFile };
}
