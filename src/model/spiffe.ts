// SPIFFE identities of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// Pure parsing and formatting; the one place that knows the URI shape.

export interface Identity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Parse a SPIFFE ID URI; returns a reason string when it is not a well-formed workload identity. */
export function parseSpiffeId(uri: string): { ok: true; identity: Identity } | { ok: false; reason: string } {
  if (!uri.startsWith("spiffe://"))
    return { ok: false, reason: `"${uri}" is not a SPIFFE ID (expected spiffe://...)` };
  const rest = uri.slice("spiffe://".length);
  const parts = rest.split("/");
  const [td, nsKey, ns, saKey, sa, ...extra] = parts;
  if (!td || !TRUST_DOMAIN.test(td) || td.length > 255) {
    return { ok: false, reason: `"${uri}": trust domain must be lowercase letters, digits, '.', '-' or '_'` };
  }
  if (nsKey !== "ns" || saKey !== "sa" || !ns || !sa || extra.length > 0) {
    return { ok: false, reason: `"${uri}": expected spiffe://${td}/ns/<namespace>/sa/<service-account>` };
  }
  if (!SEGMENT.test(ns) || !SEGMENT.test(sa)) {
    return {
      ok: false,
      reason: `"${uri}": namespace and service account may only hold letters, digits, '.', '-' or '_'`,
    };
  }
  return { ok: true, identity: { trustDomain: td, namespace: ns, serviceAccount: sa } };
}

export function formatSpiffeId(id: Identity): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Istio's principal form: the SPIFFE ID without the scheme ("cluster.local/ns/a/sa/b"). */
export function principalOf(id: Identity): string {
  return `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}
