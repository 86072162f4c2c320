// CA pinning for bootstrap: a joining node has no trust bundle yet, so its join token carries the
// sha256 of the CA root's SubjectPublicKeyInfo (as kubeadm's discovery hash does).
import { createHash, X509Certificate } from "node:crypto";

export function spkiPin(certPem: string | Buffer): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("hex");
}
