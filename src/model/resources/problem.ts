// A validation problem: where it is (file, document, resource, field path, line) and what was expected.
import type { ErrorCode } from "../../core/errors.js";

export interface Problem {
  code: ErrorCode;
  /** File name as given by the caller ("<stdin>", "<request>" for non-file input). */
  file: string;
  /** 0-based index of the document in the file (after expanding JSON arrays and List items). */
  index: number;
  /** "Kind namespace/name" (or "Kind name" for cluster-scoped kinds) when known. */
  resource?: string | undefined;
  /** Field path such as spec.rules[0].from[0].source.principals[1]; empty for the whole document. */
  path: string;
  /** 1-based line in the file, when the source is YAML/JSON text with positions. */
  line?: number | undefined;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_$][\w$-]*$/.test(s) ? (out === "" ? s : `.${s}`) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

/** One line per problem: `file:line (document N) Kind ns/name: path: message [CODE]`. */
export function formatProblem(p: Problem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}` : p.file;
  const doc = `(document ${p.index + 1})`;
  const res = p.resource ? ` ${p.resource}` : "";
  const path = p.path ? ` ${p.path}:` : "";
  return `${where} ${doc}${res}:${path} ${p.message} [${p.code}]`;
}
