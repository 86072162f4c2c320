// The control plane's config: every resource in DIR/config (YAML/JSON files, edits picked up).
// A resource that turns invalid is rejected alone and its last accepted version keeps serving.
import { watch, type FSWatcher } from "node:fs";
import { mkdir } from "node:fs/promises";
import { loadResourceFiles } from "../config/files.js";
import type { Problem } from "../model/resources/problem.js";
import type { AnyResource } from "../model/resources/registry.js";
import { resourceId } from "../model/resources/types.js";

/** WorkloadEntries name their node with this label (Pods use spec.nodeName). */
export const NODE_LABEL = "ambit.io/node";

export interface NodeWorkload {
  kind: "Pod" | "WorkloadEntry";
  namespace: string;
  name: string;
  serviceAccount: string;
}

export class ConfigStore {
  private current = new Map<string, AnyResource>();
  private rejected: Problem[] = [];
  private byNode = new Map<string, NodeWorkload[]>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<() => void>();
  private reloading: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string) {}

  static async open(dir: string, opts: { watch?: boolean; debounceMs?: number } = {}): Promise<ConfigStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new ConfigStore(dir);
    await store.reload();
    if (opts.watch ?? true) store.startWatching(opts.debounceMs ?? 100);
    return store;
  }

  resources(): AnyResource[] {
    return [...this.current.values()];
  }

  /** Problems of the last reload: resources rejected (their previous version, if any, still serves). */
  problems(): readonly Problem[] {
    return this.rejected;
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

  /** Re-read the directory; serialized so overlapping reloads apply in order. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.doReload());
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    const { resources, problems } = await loadResourceFiles([this.dir]);
    const next = new Map<string, AnyResource>();
    for (const r of resources) next.set(resourceId(r), r);
    // A resource that exists but is now invalid keeps its last accepted version.
    for (const p of problems) {
      if (p.resource && !next.has(p.resource)) {
        const prev = this.current.get(p.resource);
        if (prev) next.set(p.resource, prev);
      }
    }
    this.current = next;
    this.rejected = problems;
    this.byNode = indexByNode(next.values());
    for (const l of this.listeners) l();
  }

  private startWatching(debounceMs: number): void {
    this.watcher = watch(this.dir, () => {
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
