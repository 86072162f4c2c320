// The control plane's config: every resource in DIR/config (YAML/JSON files, edits picked up), plus
// atomic writes (apply/delete) with per-resource status; invalid on-disk edits keep the last accepted version.
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { mkdir, open, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { stringify } from "yaml";
import { writeFileAtomic } from "../core/atomic-file.js";
import { readSources, type SourceText } from "../config/files.js";
import {
  combineValidated,
  parseDocuments,
  validateEach,
  type ValidatedDocument,
} from "../model/resources/load.js";
import type { Problem } from "../model/resources/problem.js";
import { kindInfo, resolveKindName, type AnyResource } from "../model/resources/registry.js";
import { resourceId } from "../model/resources/types.js";

/** WorkloadEntries name their node with this label (Pods use spec.nodeName). */
export const NODE_LABEL = "ambit.io/node";

export interface NodeWorkload {
  kind: "Pod" | "WorkloadEntry";
  namespace: string;
  name: string;
  serviceAccount: string;
}

/** What the last reload decided about one resource. */
export interface ResourceStatus {
  phase: "accepted" | "rejected";
  /** Generation of the version being served; bumped whenever the accepted document changes. */
  generation: number;
  /** When the served version was accepted (ISO 8601). */
  acceptedAt: string;
  /** Set when phase is "rejected": when the rejected edit was seen, and why. */
  rejectedAt?: string;
  problems: Problem[];
  message?: string;
  /** Data-plane clients that acknowledged this generation (filled by the xDS server). */
  acks: string[];
}

/** One served resource: the validated (defaulted) form, the user's document and where it lives. */
export interface StoredResource {
  resource: AnyResource;
  /** The document as the user wrote it (what `get -o yaml` prints). */
  raw: Record<string, unknown>;
  file: string;
  createdAt: string;
  status: ResourceStatus;
}

/** A resource whose only version on disk is invalid: never accepted, nothing serves. */
export interface RejectedResource {
  kind: string;
  namespace?: string | undefined;
  name: string;
  raw: Record<string, unknown>;
  file: string;
  firstSeen: string;
  problems: Problem[];
}

export interface ResourceRef {
  kind: string;
  namespace?: string | undefined;
  name: string;
}

export type ApplyAction = "created" | "configured" | "unchanged";

export interface AppliedResource {
  kind: string;
  namespace?: string | undefined;
  name: string;
  action: ApplyAction;
}

export type ApplyResult = { ok: true; applied: AppliedResource[] } | { ok: false; problems: Problem[] };

export type DeleteResult =
  | { ok: true; deleted: { kind: string; namespace?: string | undefined; name: string }[] }
  | { ok: false; notFound: ResourceRef[]; problems: Problem[] };

const MAX_BASE = 200;

/**
 * The file Ambit owns for one resource, flat in DIR/config so one non-recursive watch sees it:
 * `<kind>_<namespace>_<name>.yaml`, or `<kind>_<name>.yaml` for cluster-scoped kinds (kind in
 * lowercase). `_` never occurs in Kubernetes names, so the name cannot collide with another resource;
 * names too long for a file name are cut and suffixed with a hash of the full name.
 */
export function ownFileName(r: {
  kind: string;
  metadata: { name: string; namespace?: string | undefined };
}): string {
  const ns = r.metadata.namespace;
  const base = ns
    ? `${r.kind.toLowerCase()}_${ns}_${r.metadata.name}`
    : `${r.kind.toLowerCase()}_${r.metadata.name}`;
  // Names may reach 253 characters: keep the file (and its temp sibling) under NAME_MAX (255 bytes).
  if (base.length <= MAX_BASE) return `${base}.yaml`;
  const digest = createHash("sha256").update(base).digest("hex").slice(0, 16);
  return `${base.slice(0, MAX_BASE - 17)}-${digest}.yaml`;
}

/**
 * The stored shape: the user's document minus `status` (status is the control plane's to report),
 * except a Pod's, which is the runtime's report of its addresses (the lab writes it as a kubelet
 * would) and an input to the workloads pushed to nodes.
 */
function userShape(value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  if (out.kind !== "Pod" || out.apiVersion !== "v1") delete out.status;
  return out;
}

/** userShape per parsed document, so an unchanged file yields the very same objects on a reload. */
const shapes = new WeakMap<object, Record<string, unknown>>();
function userShapeOf(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null) return userShape(value);
  let shaped = shapes.get(value);
  if (!shaped) {
    shaped = userShape(value);
    shapes.set(value, shaped);
  }
  return shaped;
}

async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Run `fn` over items with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

interface Parsed {
  resources: { resource: AnyResource; raw: Record<string, unknown> }[];
  /** Every parsed document by file and index. */
  raws: Map<string, unknown>;
  problems: Problem[];
  /** Documents per file (parse failures count as one), to tell single-document files apart. */
  docCount: Map<string, number>;
}

const docKey = (file: string, index: number): string => `${file}\u0000${index}`;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Kind, namespace (defaulted) and name of a raw document, when it names them. */
function refOf(raw: unknown): { kind: string; namespace?: string | undefined; name: string } | undefined {
  if (!isRecord(raw) || typeof raw.kind !== "string" || !isRecord(raw.metadata)) return undefined;
  const { name, namespace } = raw.metadata;
  if (typeof name !== "string") return undefined;
  const info = kindInfo(raw.kind);
  return {
    kind: info?.kind ?? raw.kind,
    namespace: info?.namespaced === false ? undefined : typeof namespace === "string" ? namespace : "default",
    name,
  };
}

/** A file's documents parsed and validated alone, reusable while the file's text is unchanged. */
interface ParsedFile {
  text: string;
  validated: ValidatedDocument[];
  parseProblems: Problem[];
  /** Documents in the file (parse failures count as one each). */
  docCount: number;
}

function parseFile(t: SourceText): ParsedFile {
  const p = parseDocuments(t.text, t.file);
  const failed = new Set(p.problems.map((x) => x.index)).size;
  return {
    text: t.text,
    validated: validateEach(p.docs),
    parseProblems: p.problems,
    docCount: p.docs.length + failed,
  };
}

/**
 * Parse and validate texts as one set. `cache` (file → last parse) lets a reload skip every file
 * whose text has not changed: with thousands of resources, re-parsing all YAML on each apply is
 * what would stall the control plane. The cross-file duplicate check always runs.
 */
function parseAndValidate(texts: readonly SourceText[], cache?: Map<string, ParsedFile>): Parsed {
  const problems: Problem[] = [];
  const docCount = new Map<string, number>();
  const validated: ValidatedDocument[] = [];
  const seenFiles = new Set<string>();
  for (const t of texts) {
    const hit = cache?.get(t.file);
    const f = hit && hit.text === t.text ? hit : parseFile(t);
    cache?.set(t.file, f);
    seenFiles.add(t.file);
    problems.push(...f.parseProblems);
    validated.push(...f.validated);
    docCount.set(t.file, f.docCount);
  }
  if (cache) for (const file of cache.keys()) if (!seenFiles.has(file)) cache.delete(file);
  const raws = new Map(validated.map((d) => [docKey(d.doc.file, d.doc.index), d.doc.value]));
  const v = combineValidated(validated);
  problems.push(...v.problems);
  const resources = v.resources.map((resource) => ({
    resource,
    raw: userShapeOf(raws.get(docKey(resource.origin?.file ?? "", resource.origin?.index ?? 0))),
  }));
  return { resources, raws, problems, docCount };
}

export class ConfigStore {
  private current = new Map<string, StoredResource>();
  private rejected: Problem[] = [];
  /** Resources rejected on disk that were never accepted, by resource id. */
  private neverAccepted = new Map<string, RejectedResource>();
  private docCount = new Map<string, number>();
  private byNode = new Map<string, NodeWorkload[]>();
  /** Last parse of each file in the directory, reused while its text is unchanged. */
  private readonly parsedFiles = new Map<string, ParsedFile>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();
  /** Reloads, applies and deletes run one at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {}

  static async open(dir: string, opts: { watch?: boolean; debounceMs?: number } = {}): Promise<ConfigStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new ConfigStore(resolve(dir));
    await store.reload();
    if (opts.watch ?? true) store.startWatching(opts.debounceMs ?? 100);
    return store;
  }

  resources(): AnyResource[] {
    return [...this.current.values()].map((e) => e.resource);
  }

  /** Served resources with their user documents and status, optionally filtered. */
  list(filter: { kind?: string; namespace?: string; name?: string } = {}): StoredResource[] {
    return [...this.current.values()].filter(
      (e) =>
        (filter.kind === undefined || e.resource.kind === filter.kind) &&
        (filter.namespace === undefined || e.resource.metadata.namespace === filter.namespace) &&
        (filter.name === undefined || e.resource.metadata.name === filter.name),
    );
  }

  /** Resources present on disk only in an invalid form (nothing serves them), optionally filtered. */
  listRejected(filter: { kind?: string; namespace?: string; name?: string } = {}): RejectedResource[] {
    return [...this.neverAccepted.values()].filter(
      (e) =>
        (filter.kind === undefined || e.kind === filter.kind) &&
        (filter.namespace === undefined || e.namespace === filter.namespace) &&
        (filter.name === undefined || e.name === filter.name),
    );
  }

  /** Problems of the last reload: resources rejected (their previous version, if any, still serves). */
  problems(): readonly Problem[] {
    return this.rejected;
  }

  /** Hook for the xDS server: record which data-plane clients acknowledged a resource's generation. */
  setAcks(id: string, acks: readonly string[]): void {
    const e = this.current.get(id);
    if (e) e.status.acks = [...acks];
  }

  workloadsOnNode(node: string): readonly NodeWorkload[] {
    return this.byNode.get(node) ?? [];
  }

  hasWorkloadOnNode(node: string, namespace: string, serviceAccount: string): boolean {
    return this.workloadsOnNode(node).some(
      (w) => w.namespace === namespace && w.serviceAccount === serviceAccount,
    );
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Re-read the directory; serialized with other reloads, applies and deletes. */
  reload(): Promise<void> {
    return this.serialize(() => this.doReload());
  }

  /**
   * Validate every document first; any problem → nothing changes and every problem is returned.
   * Otherwise each changed resource is written atomically to its file, then the directory reloads.
   */
  apply(texts: readonly SourceText[]): Promise<ApplyResult> {
    return this.serialize(() => this.doApply(texts));
  }

  /** Remove resources; all-or-nothing: an absent one (unless ignoreNotFound) leaves everything as is. */
  delete(refs: readonly ResourceRef[], opts: { ignoreNotFound?: boolean } = {}): Promise<DeleteResult> {
    return this.serialize(() => this.doDelete(refs, opts.ignoreNotFound ?? false));
  }

  /** Where a resource lives now: its served file, or the file of a never-accepted rejected version. */
  private fileOf(id: string): string | undefined {
    return this.current.get(id)?.file ?? this.neverAccepted.get(id)?.file;
  }

  private isOwnFile(file: string, r: Parameters<typeof ownFileName>[0]): boolean {
    return dirname(file) === this.dir && basename(file) === ownFileName(r);
  }

  private async doApply(texts: readonly SourceText[]): Promise<ApplyResult> {
    const parsed = parseAndValidate(texts);
    // Decide against the directory as it is now, not as of the last (debounced) watch event.
    await this.doReload();
    const problems = [...parsed.problems];
    if (parsed.resources.length === 0 && problems.length === 0) {
      problems.push({
        code: "AMBIT_E_USAGE",
        file: texts[0]?.file ?? "<request>",
        index: 0,
        path: "",
        message: "no objects passed to apply",
      });
    }
    const plan: { id: string; file: string; raw: Record<string, unknown>; applied: AppliedResource }[] = [];
    for (const { resource, raw } of parsed.resources) {
      const id = resourceId(resource);
      const existing = this.current.get(id);
      const where = this.fileOf(id);
      let file = join(this.dir, ownFileName(resource));
      if (where && !this.isOwnFile(where, resource)) {
        if ((this.docCount.get(where) ?? 0) === 1) file = where;
        else {
          problems.push({
            code: "AMBIT_E_CONFLICT",
            file: resource.origin?.file ?? "<request>",
            index: resource.origin?.index ?? 0,
            resource: id,
            path: "",
            message: `${id} is defined in ${where} together with other documents; edit that file instead`,
          });
          continue;
        }
      }
      const unchanged =
        existing !== undefined &&
        existing.status.phase === "accepted" &&
        isDeepStrictEqual(existing.raw, raw);
      plan.push({
        id,
        file,
        raw,
        applied: {
          kind: resource.kind,
          ...(resource.metadata.namespace !== undefined ? { namespace: resource.metadata.namespace } : {}),
          name: resource.metadata.name,
          action: unchanged ? "unchanged" : existing ? "configured" : "created",
        },
      });
    }
    if (problems.length > 0) return { ok: false, problems };
    const writes = plan.filter((p) => p.applied.action !== "unchanged");
    await pool(writes, 16, (p) => writeFileAtomic(p.file, stringify(p.raw), 0o600));
    if (writes.length > 0) await this.doReload();
    return { ok: true, applied: plan.map((p) => p.applied) };
  }

  private async doDelete(refs: readonly ResourceRef[], ignoreNotFound: boolean): Promise<DeleteResult> {
    await this.doReload();
    const notFound: ResourceRef[] = [];
    const problems: Problem[] = [];
    const files = new Set<string>();
    const deleted: { kind: string; namespace?: string | undefined; name: string }[] = [];
    for (const ref of refs) {
      const info = kindInfo(ref.kind) ?? resolveKindName(ref.kind);
      const meta = {
        name: ref.name,
        namespace: info?.namespaced === false ? undefined : (ref.namespace ?? "default"),
      };
      const id = resourceId({ kind: info?.kind ?? ref.kind, metadata: meta });
      const file = this.fileOf(id);
      if (!info || !file) {
        if (!ignoreNotFound) notFound.push({ kind: info?.kind ?? ref.kind, ...meta });
        continue;
      }
      if (
        !this.isOwnFile(file, { kind: info.kind, metadata: meta }) &&
        (this.docCount.get(file) ?? 0) !== 1
      ) {
        problems.push({
          code: "AMBIT_E_CONFLICT",
          file,
          index: 0,
          resource: id,
          path: "",
          message: `${id} is defined in ${file} together with other documents; remove it from that file instead`,
        });
        continue;
      }
      files.add(file);
      deleted.push({ kind: info.kind, ...meta });
    }
    if (notFound.length > 0 || problems.length > 0) return { ok: false, notFound, problems };
    await pool([...files], 16, async (f) => {
      await unlink(f).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
    });
    if (files.size > 0) {
      await fsyncDir(this.dir);
      await this.doReload();
    }
    return { ok: true, deleted };
  }

  private async doReload(): Promise<void> {
    const read = await readSources([this.dir]);
    const parsed = parseAndValidate(read.texts, this.parsedFiles);
    const problems = [...read.problems, ...parsed.problems];
    const now = new Date().toISOString();
    const next = new Map<string, StoredResource>();
    for (const { resource, raw } of parsed.resources) {
      const id = resourceId(resource);
      const prev = this.current.get(id);
      const file = resource.origin?.file ?? "";
      if (prev && prev.status.phase === "accepted" && isDeepStrictEqual(prev.raw, raw)) {
        next.set(id, { ...prev, resource, file });
        continue;
      }
      if (prev && isDeepStrictEqual(prev.raw, raw)) {
        // A rejected edit was reverted to the served version.
        const { generation, acceptedAt, acks } = prev.status;
        next.set(id, {
          ...prev,
          resource,
          file,
          status: { phase: "accepted", generation, acceptedAt, problems: [], acks },
        });
        continue;
      }
      next.set(id, {
        resource,
        raw,
        file,
        createdAt: prev?.createdAt ?? now,
        status: {
          phase: "accepted",
          generation: (prev?.status.generation ?? 0) + 1,
          acceptedAt: now,
          problems: [],
          acks: [],
        },
      });
    }
    // A resource that exists but is now invalid keeps its last accepted version. A file that no
    // longer parses rejects every resource it held.
    const badFiles = new Map<string, Problem[]>();
    const byResource = new Map<string, Problem[]>();
    const neverAccepted = new Map<string, RejectedResource>();
    for (const p of problems) {
      if (p.resource) {
        byResource.set(p.resource, [...(byResource.get(p.resource) ?? []), p]);
        const ref =
          p.code === "AMBIT_E_DUPLICATE" ? undefined : refOf(parsed.raws.get(docKey(p.file, p.index)));
        const known = neverAccepted.get(p.resource);
        if (known) known.problems.push(p);
        else if (ref) {
          neverAccepted.set(p.resource, {
            ...ref,
            raw: userShape(parsed.raws.get(docKey(p.file, p.index))),
            file: p.file,
            firstSeen: this.neverAccepted.get(p.resource)?.firstSeen ?? now,
            problems: [p],
          });
        }
      } else badFiles.set(p.file, [...(badFiles.get(p.file) ?? []), p]);
    }
    for (const [id, prev] of this.current) {
      if (next.has(id)) continue;
      const own = byResource.get(id) ?? badFiles.get(prev.file);
      if (!own) continue;
      next.set(id, {
        ...prev,
        status: {
          ...prev.status,
          phase: "rejected",
          rejectedAt: prev.status.phase === "rejected" ? (prev.status.rejectedAt ?? now) : now,
          problems: own,
          message: `the edit is invalid; still serving generation ${prev.status.generation}, accepted at ${prev.status.acceptedAt}`,
        },
      });
    }
    for (const id of next.keys()) neverAccepted.delete(id);
    // Listeners (the xDS view) hear of a reload only when what is served changed.
    let changed = next.size !== this.current.size;
    if (!changed)
      for (const [id, e] of next) {
        if (this.current.get(id)?.resource !== e.resource) {
          changed = true;
          break;
        }
      }
    this.current = next;
    this.rejected = problems;
    this.neverAccepted = neverAccepted;
    this.docCount = parsed.docCount;
    if (!changed) return;
    this.byNode = indexByNode(this.resources());
    for (const l of this.listeners) l();
  }

  private startWatching(debounceMs: number): void {
    this.watcher = watch(this.dir, (_event, name) => {
      // Atomic writes leave short-lived dot files; only real entries matter.
      if (typeof name === "string" && name.startsWith(".")) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.reload().catch(() => undefined);
      }, debounceMs);
    });
    this.watcher.on("error", () => undefined);
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }
}

function indexByNode(resources: Iterable<AnyResource>): Map<string, NodeWorkload[]> {
  const out = new Map<string, NodeWorkload[]>();
  const add = (node: string, w: NodeWorkload): void => {
    const list = out.get(node) ?? [];
    list.push(w);
    out.set(node, list);
  };
  for (const r of resources) {
    if (r.kind === "Pod") {
      const pod = r;
      const spec = pod.spec;
      if (spec.nodeName) {
        add(spec.nodeName, {
          kind: "Pod",
          namespace: pod.metadata.namespace ?? "default",
          name: pod.metadata.name,
          serviceAccount: spec.serviceAccountName ?? "default",
        });
      }
    } else if (r.kind === "WorkloadEntry") {
      const we = r;
      const spec = we.spec;
      const node = we.metadata.labels?.[NODE_LABEL] ?? spec.labels?.[NODE_LABEL];
      if (node) {
        add(node, {
          kind: "WorkloadEntry",
          namespace: we.metadata.namespace ?? "default",
          name: we.metadata.name,
          serviceAccount: spec.serviceAccount ?? "default",
        });
      }
    }
  }
  return out;
}
