// `ambit apply / delete / get`: kubectl-style config management through the control plane's admin
// API (validation, atomic storage and status live in the control plane's config store).
import type { Command } from "commander";
import { stringify } from "yaml";
import { readSources } from "../../config/files.js";
import { AmbitError, isAmbitError } from "../../core/errors.js";
import { parseDocuments } from "../../model/resources/load.js";
import type { Problem } from "../../model/resources/problem.js";
import { KIND_INFO, kindInfo, resolveKindName, type KindInfo } from "../../model/resources/registry.js";
import { adminRequest, adminTargetOptions, withTarget, type TargetOpts } from "../admin-client.js";
import { collect, printProblems, type Io } from "../io.js";

interface Applied {
  kind: string;
  namespace?: string;
  name: string;
  action: string;
}

interface ResourceStatusView {
  phase: "accepted" | "rejected";
  generation: number;
  acceptedAt: string;
  message?: string;
  acks: string[];
}

interface ResourceView {
  kind: string;
  namespace?: string;
  name: string;
  object: Record<string, unknown>;
  spec: unknown;
  createdAt: string;
  status: ResourceStatusView;
}

/** kubectl's `authorizationpolicy.security.istio.io` (or `pod` for the core group). */
function typeName(kind: string): string {
  const info = kindInfo(kind);
  if (!info) return kind.toLowerCase();
  return info.group ? `${info.singular}.${info.group}` : info.singular;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function resolveKind(name: string): KindInfo {
  const info = resolveKindName(name);
  if (!info) {
    throw new AmbitError(
      "AMBIT_E_UNKNOWN_KIND",
      `the server doesn't have a resource type "${name}"; accepted kinds: ${KIND_INFO.map((k) => k.kind).join(", ")}`,
    );
  }
  return info;
}

/** kubectl's AGE: 42s, 5m, 3h, 2d. */
export function age(since: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

function field(v: unknown, ...path: string[]): string {
  let cur = v;
  for (const p of path) {
    if (typeof cur !== "object" || cur === null) return "<none>";
    cur = (cur as Record<string, unknown>)[p];
  }
  if (cur === undefined || cur === null) return "<none>";
  if (Array.isArray(cur))
    return cur.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(",");
  return typeof cur === "string" ? cur : JSON.stringify(cur);
}

/** Kind-specific columns of `-o wide`. */
const WIDE: Partial<Record<string, [string, (spec: unknown) => string][]>> = {
  AuthorizationPolicy: [
    ["ACTION", (s) => field(s, "action")],
    [
      "RULES",
      (s) =>
        String(
          Array.isArray((s as { rules?: unknown }).rules) ? (s as { rules: unknown[] }).rules.length : 0,
        ),
    ],
  ],
  PeerAuthentication: [["MODE", (s) => field(s, "mtls", "mode")]],
  Pod: [
    ["NODE", (s) => field(s, "nodeName")],
    ["SERVICE-ACCOUNT", (s) => field(s, "serviceAccountName")],
  ],
  WorkloadEntry: [
    ["ADDRESS", (s) => field(s, "address")],
    ["SERVICE-ACCOUNT", (s) => field(s, "serviceAccount")],
  ],
  ServiceEntry: [["HOSTS", (s) => field(s, "hosts")]],
  Service: [["TYPE", (s) => field(s, "type")]],
};

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd(),
  );
}

/** Problems the server attached to a refused request, when there are any. */
function problemsOf(err: unknown): Problem[] | undefined {
  if (!isAmbitError(err)) return undefined;
  const p = err.detail?.problems;
  return Array.isArray(p) ? (p as Problem[]) : undefined;
}

interface DeleteRef {
  kind: string;
  namespace?: string | undefined;
  name: string;
}

export function registerConfig(program: Command, io: Io, setExit: (code: number) => void): void {
  withTarget(
    program
      .command("apply")
      .description("create or update resources in the control plane (all-or-nothing per invocation)"),
  )
    .requiredOption("-f, --filename <path>", "file or directory (repeatable; - for stdin)", collect, [])
    .action(async (opts: TargetOpts & { filename: string[] }) => {
      const { texts, problems } = await readSources(opts.filename);
      if (problems.length > 0) {
        printProblems(io, problems);
        io.err(`ambit: ${plural(problems.length, "problem")}; nothing was applied [AMBIT_E_FILE_READ]`);
        setExit(1);
        return;
      }
      let r: { applied: Applied[] };
      try {
        r = (await adminRequest(adminTargetOptions(opts), "POST", "/v1/apply", { files: texts })) as {
          applied: Applied[];
        };
      } catch (err) {
        const ps = problemsOf(err);
        if (!ps || !isAmbitError(err)) throw err;
        printProblems(io, ps);
        io.err(`ambit: ${err.message} [${err.code}]`);
        setExit(1);
        return;
      }
      for (const a of r.applied) io.out(`${typeName(a.kind)}/${a.name} ${a.action}`);
      setExit(0);
    });

  withTarget(
    program
      .command("delete")
      .description("delete resources by file (-f) or by KIND NAME...; all-or-nothing per invocation")
      .argument("[kind]", "kind, as kubectl spells it (ap, authorizationpolicies, ...)")
      .argument("[names...]", "resource names"),
  )
    .option(
      "-f, --filename <path>",
      "delete the resources these files define (repeatable; - for stdin)",
      collect,
      [],
    )
    .option("-n, --namespace <ns>", "namespace of the named resources [default: default]")
    .option("--ignore-not-found", "treat an absent resource as deleted")
    .action(
      async (
        kind: string | undefined,
        names: string[],
        opts: TargetOpts & { filename: string[]; namespace?: string; ignoreNotFound?: boolean },
      ) => {
        const refs: DeleteRef[] = [];
        if (opts.filename.length > 0) {
          if (kind) throw new AmbitError("AMBIT_E_USAGE", "give either -f or KIND NAME, not both");
          const { texts, problems } = await readSources(opts.filename);
          for (const t of texts) {
            const parsed = parseDocuments(t.text, t.file);
            problems.push(...parsed.problems);
            for (const d of parsed.docs) {
              const v = d.value as {
                kind?: unknown;
                metadata?: { name?: unknown; namespace?: unknown };
              } | null;
              const k = typeof v?.kind === "string" ? v.kind : undefined;
              const name = typeof v?.metadata?.name === "string" ? v.metadata.name : undefined;
              if (!k || !name) {
                problems.push({
                  code: "AMBIT_E_MISSING_TYPE",
                  file: d.file,
                  index: d.index,
                  path: "",
                  message: "document needs kind and metadata.name",
                });
                continue;
              }
              const ns = typeof v?.metadata?.namespace === "string" ? v.metadata.namespace : undefined;
              refs.push({ kind: k, namespace: ns ?? opts.namespace ?? "default", name });
            }
          }
          if (problems.length > 0) {
            printProblems(io, problems);
            io.err(`ambit: ${plural(problems.length, "problem")}; nothing was deleted`);
            setExit(1);
            return;
          }
        } else {
          if (!kind || names.length === 0)
            throw new AmbitError(
              "AMBIT_E_USAGE",
              "give -f PATH or KIND NAME... (e.g. ambit delete ap allow-frontend)",
            );
          const info = resolveKind(kind);
          for (const name of names)
            refs.push({
              kind: info.kind,
              namespace: info.namespaced ? (opts.namespace ?? "default") : undefined,
              name,
            });
        }
        if (refs.length === 0) throw new AmbitError("AMBIT_E_USAGE", "no objects passed to delete");
        const r = (await adminRequest(adminTargetOptions(opts), "POST", "/v1/delete", {
          refs,
          ignoreNotFound: opts.ignoreNotFound === true,
        })) as { deleted: DeleteRef[] };
        for (const d of r.deleted) io.out(`${typeName(d.kind)} "${d.name}" deleted`);
        setExit(0);
      },
    );

  withTarget(
    program
      .command("get")
      .description("list resources with their status (-o yaml/json prints them as applied)")
      .argument("<kind>", "kind, as kubectl spells it (ap, authorizationpolicies, ...)")
      .argument("[name]", "one resource"),
  )
    .option("-n, --namespace <ns>", "namespace [default: default]")
    .option("-A, --all-namespaces", "every namespace")
    .option("-o, --output <format>", "yaml, json or wide")
    .action(
      async (
        kind: string,
        name: string | undefined,
        opts: TargetOpts & { namespace?: string; allNamespaces?: boolean; output?: string },
      ) => {
        const output = opts.output;
        if (output !== undefined && !["yaml", "json", "wide"].includes(output))
          throw new AmbitError("AMBIT_E_USAGE", `-o must be yaml, json or wide, not "${output}"`);
        const info = resolveKind(kind);
        const all = opts.allNamespaces === true && name === undefined;
        const namespace = info.namespaced && !all ? (opts.namespace ?? "default") : undefined;
        const q = new URLSearchParams({ kind: info.kind });
        if (namespace !== undefined) q.set("namespace", namespace);
        if (name !== undefined) q.set("name", name);
        const r = (await adminRequest(adminTargetOptions(opts), "GET", `/v1/resources?${q.toString()}`)) as {
          resources: ResourceView[];
        };
        const items = r.resources;
        if (output === "yaml" || output === "json") {
          const doc =
            name !== undefined && items[0]
              ? items[0].object
              : {
                  apiVersion: "v1",
                  kind: "List",
                  items: items.map((i) => i.object),
                  metadata: { resourceVersion: "" },
                };
          io.out(output === "json" ? JSON.stringify(doc, null, 2) : stringify(doc).trimEnd());
          setExit(0);
          return;
        }
        if (items.length === 0) {
          io.err(
            namespace !== undefined ? `No resources found in ${namespace} namespace.` : "No resources found",
          );
          setExit(0);
          return;
        }
        const showNs = all && info.namespaced;
        const wide = output === "wide" ? (WIDE[info.kind] ?? []) : [];
        const header = [
          ...(showNs ? ["NAMESPACE"] : []),
          "NAME",
          "STATUS",
          ...(output === "wide" ? ["GENERATION"] : []),
          ...wide.map(([h]) => h),
          "AGE",
        ];
        const rows = items.map((i) => [
          ...(showNs ? [i.namespace ?? ""] : []),
          i.name,
          i.status.phase === "accepted" ? "Accepted" : "Rejected",
          ...(output === "wide" ? [String(i.status.generation)] : []),
          ...wide.map(([, f]) => f(i.spec)),
          age(i.createdAt),
        ]);
        for (const line of table([header, ...rows])) io.out(line);
        const rejected = items.filter((i) => i.status.phase === "rejected");
        for (const i of rejected) io.err(`${typeName(i.kind)}/${i.name}: ${i.status.message ?? "rejected"}`);
        setExit(0);
      },
    );
}
