// PeerAuthentication: which mTLS mode is in force for a workload port, and which policy set it.
// Istio's precedence: workload (selector; port level wins) > namespace > mesh (root namespace);
// UNSET inherits from the level above; the default is PERMISSIVE.
import type { MtlsMode } from "../resources/security.js";
import type { PeerAuthentication } from "../resources/registry.js";

export type EffectiveMode = "STRICT" | "PERMISSIVE" | "DISABLE";

export interface MtlsVerdict {
  mode: EffectiveMode;
  /** "namespace/name" of the PeerAuthentication that set the mode; null for the default. */
  policy: string | null;
  /** Which level decided, for reasons. */
  level: "default" | "mesh" | "namespace" | "workload" | "port";
}

interface CompiledPeerAuthn {
  key: string;
  namespace: string;
  labels: readonly [string, string][];
  mode: MtlsMode;
  ports: ReadonlyMap<number, MtlsMode>;
}

export interface PeerAuthnIndex {
  mesh: CompiledPeerAuthn | null;
  namespaces: ReadonlyMap<string, CompiledPeerAuthn>;
  /** Selector policies per namespace, oldest first, so the first match is the one Istio picks. */
  workloads: ReadonlyMap<string, readonly CompiledPeerAuthn[]>;
}

function age(pa: PeerAuthentication): number {
  const t = pa.metadata.creationTimestamp;
  const ms = typeof t === "string" ? Date.parse(t) : NaN;
  // Resources loaded from files have no timestamp: they count as newest, then order by name.
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

function oldestFirst(a: PeerAuthentication, b: PeerAuthentication): number {
  const d = age(a) - age(b);
  if (d !== 0 && !Number.isNaN(d)) return d;
  const ka = `${a.metadata.namespace ?? ""}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ""}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function compilePeerAuthentications(
  pas: readonly PeerAuthentication[],
  rootNamespace: string,
): PeerAuthnIndex {
  let mesh: CompiledPeerAuthn | null = null;
  const namespaces = new Map<string, CompiledPeerAuthn>();
  const workloads = new Map<string, CompiledPeerAuthn[]>();
  for (const pa of [...pas].sort(oldestFirst)) {
    const namespace = pa.metadata.namespace ?? "default";
    const labels = Object.entries(pa.spec.selector?.matchLabels ?? {});
    const ports = new Map<number, MtlsMode>();
    for (const [port, m] of Object.entries(pa.spec.portLevelMtls ?? {})) ports.set(Number(port), m.mode);
    const compiled: CompiledPeerAuthn = {
      key: `${namespace}/${pa.metadata.name}`,
      namespace,
      labels,
      mode: pa.spec.mtls?.mode ?? "UNSET",
      ports,
    };
    if (labels.length === 0) {
      if (namespace === rootNamespace) mesh ??= compiled;
      else if (!namespaces.has(namespace)) namespaces.set(namespace, compiled);
    } else if (namespace !== rootNamespace) {
      // Istio ignores selector PeerAuthentications in the root namespace.
      const list = workloads.get(namespace) ?? [];
      list.push(compiled);
      workloads.set(namespace, list);
    }
  }
  return { mesh, namespaces, workloads };
}

function selects(pa: CompiledPeerAuthn, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of pa.labels) if (labels[k] !== v) return false;
  return true;
}

/** DISABLE and PERMISSIVE both accept plaintext; only STRICT rejects it. */
export function effectiveMtls(
  index: PeerAuthnIndex,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  port: number,
): MtlsVerdict {
  let verdict: MtlsVerdict = { mode: "PERMISSIVE", policy: null, level: "default" };
  const apply = (
    pa: CompiledPeerAuthn | null | undefined,
    mode: MtlsMode | undefined,
    level: MtlsVerdict["level"],
  ): void => {
    if (pa && mode !== undefined && mode !== "UNSET") verdict = { mode, policy: pa.key, level };
  };
  apply(index.mesh, index.mesh?.mode, "mesh");
  const ns = index.namespaces.get(namespace);
  apply(ns, ns?.mode, "namespace");
  const workload = index.workloads.get(namespace)?.find((pa) => selects(pa, labels));
  if (workload) {
    apply(workload, workload.mode, "workload");
    const portMode = workload.ports.get(port);
    // A port-level UNSET inherits the workload's effective mode; any other value replaces it.
    apply(workload, portMode, "port");
  }
  return verdict;
}
