// Errors with stable codes. Every code Ambit can emit is listed here once, with its meaning;
// docs/errors.md is the user-facing catalogue and a unit test keeps the two in sync.

export const ERROR_CODES = {
  AMBIT_E_USAGE: "The command line is malformed: unknown flag, missing argument or bad value.",
  AMBIT_E_FILE_READ: "A file or directory named on the command line or in config could not be read.",
  AMBIT_E_PARSE: "A document is not valid YAML or JSON.",
  AMBIT_E_NOT_OBJECT: "A document (or JSON array element) is not an object.",
  AMBIT_E_MISSING_TYPE: "A document has no apiVersion or kind.",
  AMBIT_E_UNKNOWN_KIND: "The apiVersion/kind pair is not a resource Ambit understands.",
  AMBIT_E_UNKNOWN_FIELD: "A field is not part of the resource's schema.",
  AMBIT_E_INVALID_TYPE: "A field has the wrong type (for example a string where a list is expected).",
  AMBIT_E_INVALID_VALUE:
    "A field has a value outside what it accepts (enum, range, format, CIDR, port, label).",
  AMBIT_E_MISSING_FIELD: "A required field is absent.",
  AMBIT_E_DUPLICATE: "Two resources share kind, namespace and name.",
  AMBIT_E_INVALID_REQUEST: "An authorization request (ambit authz check --request) is malformed.",
  AMBIT_E_CSR_INVALID: "A certificate signing request is not a well-formed PEM PKCS#10 CSR.",
  AMBIT_E_CSR_SIGNATURE: "A CSR's signature does not verify with its own public key.",
  AMBIT_E_CSR_SAN: "A CSR does not carry exactly one URI SAN holding a well-formed SPIFFE ID.",
  AMBIT_E_TRUST_DOMAIN: "A SPIFFE ID or peer certificate belongs to another trust domain.",
  AMBIT_E_IDENTITY_MISMATCH:
    "The CSR's SPIFFE ID differs from the identity requested (ImpersonatedIdentity or the caller's own).",
  AMBIT_E_KEY_WEAK: "The CSR's key is not EC P-256/P-384 or RSA of at least 2048 bits.",
  AMBIT_E_TTL_TOO_LONG: "The requested certificate validity exceeds the CA's maximum.",
  AMBIT_E_CA_STATE:
    "The CA's key material on disk is missing, unreadable, mismatched or has unsafe permissions.",
  AMBIT_E_UNAUTHENTICATED: "A call to the control plane carried no valid node certificate or admin token.",
  AMBIT_E_NODE_NOT_AUTHORIZED: "A node asked for an identity with no workload on that node.",
  AMBIT_E_JOIN_TOKEN: "A join token is unknown, expired, already used, or for another node.",
  AMBIT_E_REVOKED: "A certificate or identity has been revoked.",
  AMBIT_E_UNAVAILABLE:
    "The control plane could not be reached, or a fetch failed and will be retried with backoff.",
  AMBIT_E_CONFIG_REJECTED:
    "An apply was refused because at least one resource is invalid; nothing was applied (every problem is listed).",
  AMBIT_E_NOT_FOUND: "A resource named in a delete or get does not exist (kubectl's NotFound).",
  AMBIT_E_CONFLICT:
    "A resource lives in a user-managed file under DIR/config next to other documents, so Ambit will not rewrite it.",
  AMBIT_E_LAB:
    "The lab could not build or change its namespaces, links, CNI wiring or processes (the message names the step and the command's error).",
  AMBIT_E_CAPTURE:
    "In-pod capture is unavailable: the native addon is not built or the platform is not Linux.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one base class: a stable code, a message a human can act on, and optional structured detail. */
export class AmbitError extends Error {
  readonly code: ErrorCode;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, detail?: Record<string, unknown>, options?: ErrorOptions) {
    super(message, options);
    this.name = "AmbitError";
    this.code = code;
    this.detail = detail;
  }
}

export function isAmbitError(err: unknown): err is AmbitError {
  return err instanceof AmbitError;
}

/** A string from the wire (gRPC metadata, HTTP body) as an ErrorCode, when it is one. */
export function asErrorCode(s: unknown): ErrorCode | undefined {
  return typeof s === "string" && s in ERROR_CODES ? (s as ErrorCode) : undefined;
}
