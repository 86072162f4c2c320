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
  AMBIT_E_INVALID_VALUE: "A field has a value outside what it accepts (enum, range, format, CIDR, port, label).",
  AMBIT_E_MISSING_FIELD: "A required field is absent.",
  AMBIT_E_DUPLICATE: "Two resources share kind, namespace and name.",
  AMBIT_E_INVALID_REQUEST: "An authorization request (ambit authz check --request) is malformed.",
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
