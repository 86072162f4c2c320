// Text → validated resources. Parses YAML (multi-document) or JSON (object, array, or a
// Kubernetes List), validates each document against its kind's schema, applies Kubernetes/Istio
// defaults, and reports every problem with file, document, resource, field path and line. Pure.
import { isMap, isSeq, LineCounter, parseAllDocuments, type Document } from "yaml";
import type { z } from "zod";
import { MISSING_FIELD_PARAMS, objectMeta } from "./common.js";
import { configMapData, configMapProblems, type ConfigMapData } from "./configmap.js";
import { formatPath, type Problem } from "./problem.js";
import { podStatus } from "./core.js";
import { apiVersionsOf, KIND_INFO, kindInfo, type AnyResource, type KindInfo } from "./registry.js";
import { resourceId, resourceKey } from "./types.js";

/** One document of a file, before validation. */
export interface RawDocument {
  file: string;
  index: number;
  value: unknown;
  /** Resolves a field path to a 1-based line, when positions are known. */
  lineOf?: (path: readonly PropertyKey[]) => number | undefined;
}

export interface LoadResult {
  resources: AnyResource[];
  problems: Problem[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Split a file's text into documents; JSON when it starts with '{' or '[', YAML otherwise. */
export function parseDocuments(text: string, file: string): { docs: RawDocument[]; problems: Problem[] } {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      const docs = expand([JSON.parse(text) as unknown]).map(({ value }, index) => ({ file, index, value }));
      return { docs, problems: [] };
    } catch (err) {
      // Not JSON after all (YAML flow style also starts with '{'): let the YAML parser decide.
      if (!(err instanceof SyntaxError)) throw err;
    }
  }
  const lineCounter = new LineCounter();
  const problems: Problem[] = [];
  const docs: RawDocument[] = [];
  // Documents are numbered as the user sees them: empty ones skipped, List items expanded, and a
  // document that fails to parse still takes its number so later documents keep theirs.
  let next = 0;
  const yamlDocs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(yamlDocs) ? yamlDocs : [yamlDocs];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      const index = next++;
      for (const e of doc.errors) {
        const line = lineCounter.linePos(e.pos[0]).line;
        problems.push({
          code: "AMBIT_E_PARSE",
          file,
          index,
          path: "",
          line,
          message: `invalid YAML: ${firstLine(e.message)}`,
        });
      }
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue; // empty document between separators
    for (const { value: item, at } of expand([value])) {
      docs.push({
        file,
        index: next++,
        value: item,
        lineOf: (path) => lineOfPath(doc, lineCounter, [...at, ...path]),
      });
    }
  }
  return { docs, problems };
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}

/**
 * JSON arrays and Kubernetes Lists (`kind: List` or `*List` with items) become their elements;
 * `at` is each element's path inside the parsed value, so field lines can still be found.
 */
function expand(values: unknown[]): { value: unknown; at: PropertyKey[] }[] {
  const out: { value: unknown; at: PropertyKey[] }[] = [];
  const walk = (v: unknown, at: PropertyKey[]): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, [...at, i]));
    } else if (
      isRecord(v) &&
      typeof v.kind === "string" &&
      v.kind.endsWith("List") &&
      Array.isArray(v.items)
    ) {
      v.items.forEach((item, i) => walk(item, [...at, "items", i]));
    } else {
      out.push({ value: v, at });
    }
  };
  values.forEach((v) => walk(v, []));
  return out;
}

function lineOfPath(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): number | undefined {
  // Walk down as far as the path exists; report the deepest node found.
  let node: unknown = doc.contents;
  let best: number | undefined;
  const rangeLine = (n: unknown): number | undefined => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    return r ? lc.linePos(r[0]).line : undefined;
  };
  best = rangeLine(node);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
      if (!pair) break;
      best = rangeLine(pair.key) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg];
      best = rangeLine(node) ?? best;
    } else {
      break;
    }
  }
  return best;
}

/** Map zod issues to problems, one per unknown key. */
function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  base: Omit<Problem, "code" | "path" | "message">,
  lineOf: RawDocument["lineOf"],
): Problem[] {
  const out: Problem[] = [];
  // An object with a misspelt field often also fails an object-level rule ("set at least one
  // field"); that second problem is a consequence, so only the unknown field is reported.
  const withUnknown = new Set(
    issues.filter((i) => i.code === "unrecognized_keys").map((i) => JSON.stringify(i.path)),
  );
  for (const issue of issues) {
    if (issue.code === "custom" && withUnknown.has(JSON.stringify(issue.path))) continue;
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        out.push({
          ...base,
          code: "AMBIT_E_UNKNOWN_FIELD",
          path: formatPath(path),
          line: lineOf?.(path),
          message: `unknown field "${key}"`,
        });
      }
      continue;
    }
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      // When no alternative even had the right type (a list for int-or-string), say so with the
      // union's own message instead of the first alternative's expected type.
      const wrongType = issue.errors.every(
        (alt) => alt.length > 0 && alt.every((i) => i.code === "invalid_type" && i.path.length === 0),
      );
      if (wrongType) {
        const absent = issue.input === undefined;
        out.push({
          ...base,
          code: absent ? "AMBIT_E_MISSING_FIELD" : "AMBIT_E_INVALID_TYPE",
          path: formatPath(issue.path),
          line: lineOf?.(issue.path),
          message: absent ? "required field is missing" : `${issue.message}, got ${describe(issue.input)}`,
        });
        continue;
      }
      // Report the alternative that got furthest (fewest issues).
      const best = [...issue.errors].sort((a, b) => a.length - b.length)[0] ?? [];
      const nested = best.map((i) => ({ ...i, path: [...issue.path, ...i.path] }));
      if (nested.length > 0) {
        out.push(...issuesToProblems(nested, base, lineOf));
        continue;
      }
    }
    // A refinement may mark its issue as a missing field (one that another field makes required).
    if (issue.code === "custom" && issue.params?.ambitCode === MISSING_FIELD_PARAMS.ambitCode) {
      out.push({
        ...base,
        code: "AMBIT_E_MISSING_FIELD",
        path: formatPath(issue.path),
        line: lineOf?.(issue.path),
        message: issue.message,
      });
      continue;
    }
    // Enums and literals report an absent field as invalid_value, not invalid_type.
    const missing =
      (issue.code === "invalid_type" || issue.code === "invalid_value") &&
      "input" in issue &&
      issue.input === undefined;
    const code = missing
      ? "AMBIT_E_MISSING_FIELD"
      : issue.code === "invalid_type"
        ? "AMBIT_E_INVALID_TYPE"
        : "AMBIT_E_INVALID_VALUE";
    let message = issue.message;
    // A bad map key: the key's own problem says more than "Invalid key in record".
    if (issue.code === "invalid_key" && issue.issues[0])
      message = `key ${JSON.stringify(issue.path[issue.path.length - 1] ?? "")}: ${issue.issues[0].message}`;
    if (missing) {
      const expected =
        issue.code === "invalid_value"
          ? `one of ${issue.values.map((x) => JSON.stringify(x)).join(", ")}`
          : issue.expected;
      message = `required field is missing (expected ${expected})`;
    } else if (issue.code === "invalid_type")
      message = `expected ${issue.expected}, got ${describe(issue.input)}`;
    out.push({ ...base, code, path: formatPath(issue.path), line: lineOf?.(issue.path), message });
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return `${typeof v} ${v}`;
  return typeof v;
}

/** Validate one raw document; on success returns the defaulted resource. */
export function validateDocument(doc: RawDocument): { resource?: AnyResource; problems: Problem[] } {
  const base = { file: doc.file, index: doc.index };
  const v = doc.value;
  if (!isRecord(v)) {
    return {
      problems: [
        {
          ...base,
          code: "AMBIT_E_NOT_OBJECT",
          path: "",
          message: `expected a resource object, got ${describe(v)}`,
        },
      ],
    };
  }
  const { apiVersion, kind } = v;
  if (typeof apiVersion !== "string" || typeof kind !== "string" || apiVersion === "" || kind === "") {
    const missing = [
      typeof apiVersion !== "string" || !apiVersion ? "apiVersion" : "",
      typeof kind !== "string" || !kind ? "kind" : "",
    ]
      .filter(Boolean)
      .join(" and ");
    return {
      problems: [
        {
          ...base,
          code: "AMBIT_E_MISSING_TYPE",
          path: missing.split(" ")[0] ?? "",
          line: doc.lineOf?.([]),
          message: `document has no ${missing}`,
        },
      ],
    };
  }
  const metaName = isRecord(v.metadata) && typeof v.metadata.name === "string" ? v.metadata.name : undefined;
  const metaNs =
    isRecord(v.metadata) && typeof v.metadata.namespace === "string" ? v.metadata.namespace : undefined;
  const info = kindInfo(kind);
  const id = metaName
    ? resourceId({
        kind,
        metadata: {
          name: metaName,
          namespace: info?.namespaced === false ? undefined : (metaNs ?? "default"),
        },
      })
    : kind;
  const withRes = { ...base, resource: id };
  if (!info) {
    return {
      problems: [
        {
          ...withRes,
          code: "AMBIT_E_UNKNOWN_KIND",
          path: "kind",
          line: doc.lineOf?.(["kind"]),
          message: `unknown kind "${kind}"; expected one of ${KIND_INFO.map((k) => k.kind).join(", ")}`,
        },
      ],
    };
  }
  if (!apiVersionsOf(info).includes(apiVersion)) {
    return {
      problems: [
        {
          ...withRes,
          code: "AMBIT_E_UNKNOWN_KIND",
          path: "apiVersion",
          line: doc.lineOf?.(["apiVersion"]),
          message: `apiVersion "${apiVersion}" does not serve kind ${kind}; expected one of ${apiVersionsOf(info).join(", ")}`,
        },
      ],
    };
  }
  const problems: Problem[] = [];
  const configMap = info.kind === "ConfigMap";
  const known = new Set(
    configMap
      ? ["apiVersion", "kind", "metadata", "data"]
      : ["apiVersion", "kind", "metadata", "spec", "status"],
  );
  for (const key of Object.keys(v)) {
    if (!known.has(key)) {
      problems.push({
        ...withRes,
        code: "AMBIT_E_UNKNOWN_FIELD",
        path: formatPath([key]),
        line: doc.lineOf?.([key]),
        message: `unknown field "${key}"`,
      });
    }
  }
  const meta = objectMeta.safeParse(v.metadata, { reportInput: true });
  if (!meta.success)
    problems.push(
      ...prefix(
        issuesToProblems(meta.error.issues, withRes, (p) => doc.lineOf?.(["metadata", ...p])),
        "metadata",
      ),
    );
  let spec: unknown = undefined;
  let data: ConfigMapData | undefined;
  if (configMap) {
    const parsed = configMapData.safeParse(v.data ?? {}, { reportInput: true });
    if (!parsed.success)
      problems.push(
        ...prefix(
          issuesToProblems(parsed.error.issues, withRes, (p) => doc.lineOf?.(["data", ...p])),
          "data",
        ),
      );
    else if (meta.success) {
      data = parsed.data;
      for (const p of configMapProblems(meta.data.name, meta.data.namespace ?? "default", data)) {
        const fieldPath = p.path.split(".").slice(0, 2);
        problems.push({
          ...withRes,
          code: p.code,
          path: p.path,
          line: doc.lineOf?.(fieldPath),
          message: p.message,
        });
      }
    }
  } else if (v.spec === undefined && info.specRequired) {
    problems.push({
      ...withRes,
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec",
      line: doc.lineOf?.([]),
      message: "required field is missing (expected an object)",
    });
  } else if (v.spec !== undefined || !info.specRequired) {
    const parsed = info.spec.safeParse(v.spec ?? {}, { reportInput: true });
    if (!parsed.success)
      problems.push(
        ...prefix(
          issuesToProblems(parsed.error.issues, withRes, (p) => doc.lineOf?.(["spec", ...p])),
          "spec",
        ),
      );
    else spec = parsed.data;
  }
  let status: unknown = undefined;
  if (info.kind === "Pod" && v.status !== undefined) {
    const parsed = podStatus.safeParse(v.status, { reportInput: true });
    if (!parsed.success)
      problems.push(
        ...prefix(
          issuesToProblems(parsed.error.issues, withRes, (p) => doc.lineOf?.(["status", ...p])),
          "status",
        ),
      );
    else status = parsed.data;
  }
  if (problems.length > 0 || !meta.success) return { problems };
  const metadata = { ...meta.data };
  if (info.namespaced) metadata.namespace = metadata.namespace ?? "default";
  else delete metadata.namespace;
  const resource = {
    apiVersion,
    kind: info.kind,
    metadata,
    ...(configMap ? { data } : { spec }),
    ...(status !== undefined ? { status } : {}),
    origin: { file: doc.file, index: doc.index },
  } as AnyResource;
  return { resource, problems: [] };
}

function prefix(problems: Problem[], head: string): Problem[] {
  return problems.map((p) => ({
    ...p,
    path: p.path === "" ? head : p.path.startsWith("[") ? `${head}${p.path}` : `${head}.${p.path}`,
  }));
}

/** One document with the result of validating it alone. */
export interface ValidatedDocument {
  doc: RawDocument;
  resource?: AnyResource;
  problems: Problem[];
}

/** Validate each document alone (the part that can be reused while a document is unchanged). */
export function validateEach(docs: readonly RawDocument[]): ValidatedDocument[] {
  return docs.map((doc) => ({ doc, ...validateDocument(doc) }));
}

/** Combine documents validated alone into one set: the first of duplicate kind/namespace/name wins. */
export function combineValidated(items: Iterable<ValidatedDocument>): LoadResult {
  const resources: AnyResource[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, AnyResource>();
  for (const { doc, resource, problems: own } of items) {
    problems.push(...own);
    if (!resource) continue;
    const key = resourceKey(resource);
    const first = seen.get(key);
    if (first) {
      problems.push({
        code: "AMBIT_E_DUPLICATE",
        file: doc.file,
        index: doc.index,
        resource: resourceId(resource),
        path: "metadata.name",
        line: doc.lineOf?.(["metadata", "name"]),
        message: `duplicate ${resourceId(resource)}: already defined in ${first.origin?.file ?? "?"} (document ${(first.origin?.index ?? 0) + 1})`,
      });
      continue;
    }
    seen.set(key, resource);
    resources.push(resource);
  }
  return { resources, problems };
}

/** Validate many documents together: each alone, then across them (duplicate kind/namespace/name). */
export function validateDocuments(docs: readonly RawDocument[]): LoadResult {
  return combineValidated(validateEach(docs));
}

/** Convenience: parse and validate texts (file name → content) as one set. */
export function loadTexts(files: readonly { file: string; text: string }[]): LoadResult {
  const docs: RawDocument[] = [];
  const problems: Problem[] = [];
  for (const f of files) {
    const parsed = parseDocuments(f.text, f.file);
    docs.push(...parsed.docs);
    problems.push(...parsed.problems);
  }
  const validated = validateDocuments(docs);
  return { resources: validated.resources, problems: [...problems, ...validated.problems] };
}

export type { KindInfo };
