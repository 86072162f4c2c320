// What the CA signs: pure checks of a parsed CSR against the requested identity, the trust domain,
// key strength and validity — each refusal with a stable AMBIT_E_* code and the values involved.
import type { ErrorCode } from "../core/errors.js";
import { parseSpiffeId } from "../model/spiffe.js";
import type { ParseCsrResult } from "./pki.js";

export interface CsrPolicy {
  trustDomain: string;
  /** Longest validity the CA grants; longer requests are refused (as Istio's CA does). */
  maxTtlSeconds: number;
  /** Validity when the request names none (0 or absent), capped by the maximum. */
  defaultTtlSeconds: number;
}

export interface CsrRequest {
  /** The SPIFFE ID the caller asked for (ImpersonatedIdentity, or the caller's own). */
  identity: string;
  validitySeconds?: number | undefined;
}

export type Refusal = { ok: false; code: ErrorCode; reason: string };
export type PolicyResult = { ok: true; identity: string; ttlSeconds: number } | Refusal;

export const DEFAULT_WORKLOAD_TTL_SECONDS = 86_400;

const refuse = (code: ErrorCode, reason: string): Refusal => ({ ok: false, code, reason });

/** The validity to grant: default (capped by max) for 0/absent, refusal above the max. */
export function grantedTtl(
  requested: number | undefined,
  policy: CsrPolicy,
): { ok: true; ttlSeconds: number } | Refusal {
  const max = policy.maxTtlSeconds;
  if (requested === undefined || !Number.isFinite(requested) || requested <= 0) {
    return { ok: true, ttlSeconds: Math.min(policy.defaultTtlSeconds, max) };
  }
  if (requested > max) {
    return refuse(
      "AMBIT_E_TTL_TOO_LONG",
      `requested validity ${requested} s exceeds the CA's maximum of ${max} s`,
    );
  }
  return { ok: true, ttlSeconds: Math.floor(requested) };
}

/** Check a parsed CSR for a workload (or node) certificate. */
export function checkWorkloadCsr(parsed: ParseCsrResult, req: CsrRequest, policy: CsrPolicy): PolicyResult {
  if (!parsed.ok) return refuse(parsed.code, parsed.reason);
  const csr = parsed.csr;
  if (!csr.signatureValid) {
    return refuse(
      "AMBIT_E_CSR_SIGNATURE",
      `the CSR's ${csr.signatureAlgorithm} signature does not verify with its own public key (or the algorithm is not supported)`,
    );
  }
  const others: string[] = [];
  if (csr.dns.length) others.push(`DNS ${csr.dns.join(", ")}`);
  if (csr.ips.length) others.push(`IP ${csr.ips.join(", ")}`);
  if (csr.emails.length) others.push(`email ${csr.emails.join(", ")}`);
  if (csr.otherSans) others.push(`${csr.otherSans} other name(s)`);
  if (others.length)
    return refuse(
      "AMBIT_E_CSR_SAN",
      `a workload CSR may carry only its SPIFFE URI SAN, not ${others.join("; ")}`,
    );
  if (csr.uris.length !== 1) {
    return refuse(
      "AMBIT_E_CSR_SAN",
      csr.uris.length === 0
        ? "the CSR has no URI SAN (expected one SPIFFE ID)"
        : `the CSR has ${csr.uris.length} URI SANs (${csr.uris.join(", ")}); expected exactly one`,
    );
  }
  const uri = csr.uris[0] as string;
  const id = parseSpiffeId(uri);
  if (!id.ok) return refuse("AMBIT_E_CSR_SAN", `the CSR's URI SAN is not a workload SPIFFE ID: ${id.reason}`);
  if (id.identity.trustDomain !== policy.trustDomain) {
    return refuse(
      "AMBIT_E_TRUST_DOMAIN",
      `the CSR names ${uri}, outside this CA's trust domain ${policy.trustDomain}`,
    );
  }
  const wanted = parseSpiffeId(req.identity);
  if (!wanted.ok)
    return refuse(
      "AMBIT_E_IDENTITY_MISMATCH",
      `the requested identity is not a workload SPIFFE ID: ${wanted.reason}`,
    );
  if (wanted.identity.trustDomain !== policy.trustDomain) {
    return refuse(
      "AMBIT_E_TRUST_DOMAIN",
      `the requested identity ${req.identity} is outside this CA's trust domain ${policy.trustDomain}`,
    );
  }
  if (uri !== req.identity) {
    const w = wanted.identity;
    return refuse(
      "AMBIT_E_IDENTITY_MISMATCH",
      `CSR names ${uri} but ns/${w.namespace}/sa/${w.serviceAccount} was requested`,
    );
  }
  const k = csr.keyKind;
  const strong =
    (k.type === "ec" && (k.curve === "P-256" || k.curve === "P-384")) || (k.type === "rsa" && k.bits >= 2048);
  if (!strong) {
    const what =
      k.type === "ec" ? `EC ${k.curve}` : k.type === "rsa" ? `RSA ${k.bits}` : "a key of another type";
    return refuse(
      "AMBIT_E_KEY_WEAK",
      `the CSR's key is ${what}; the CA accepts EC P-256/P-384 or RSA of at least 2048 bits`,
    );
  }
  const ttl = grantedTtl(req.validitySeconds, policy);
  if (!ttl.ok) return ttl;
  return { ok: true, identity: uri, ttlSeconds: ttl.ttlSeconds };
}
