// Answers `ambit-cni` on behalf of the node proxy: an ADD returns once the pod is enrolled (its
// certificate issued, its listeners open inside its netns, its redirection installed), or at
// once when the mesh says the pod is not captured (its namespace is not ambient). The pod must
// be known to the control plane, with the address its CNI result gave it, within the wait.
import type { AgentHandler } from "../agent/agent.js";
import { AGENT_ERRORS, type AgentReply, type PodRegistration } from "../agent/protocol.js";
import type { MeshSnapshot, MeshWorkload } from "./mesh.js";

export type EnrolState = { state: "starting" | "ready" | "failed"; error: string | null } | undefined;

export interface CniHandlerDeps {
  nodeName: string;
  mesh: () => MeshSnapshot;
  /** The enrolment state of a local workload, by uid. */
  enrolment: (uid: string) => EnrolState;
  /** Re-run the pod reconciliation now (a registration changed). */
  reconcile: () => void;
  /** The pod left: undo its capture. */
  release: (pod: PodRegistration) => Promise<void>;
  /** How long an ADD waits for the pod to appear in the config and be enrolled. Default 30 s. */
  waitMs?: number;
}

/**
 * The workload a registration names on this node. Its addresses may not have reached the config
 * yet (the runtime reports a pod's IP after CNI ADD returns), but must not contradict the CNI's.
 */
export function workloadFor(
  mesh: MeshSnapshot,
  node: string,
  pod: PodRegistration,
): MeshWorkload | undefined {
  for (const w of mesh.workloadsOn(node)) {
    if (w.namespace !== pod.namespace || w.name !== pod.name) continue;
    if (w.ips.length === 0 || w.ips.some((ip) => pod.ips.includes(ip))) return w;
  }
  return undefined;
}

export class CniHandler implements AgentHandler {
  constructor(private readonly deps: CniHandlerDeps) {}

  async add(pod: PodRegistration): Promise<AgentReply> {
    this.deps.reconcile();
    return this.waitEnrolled(pod);
  }

  check(pod: PodRegistration): Promise<AgentReply> {
    return Promise.resolve(this.checkNow(pod));
  }

  private checkNow(pod: PodRegistration): AgentReply {
    const w = workloadFor(this.deps.mesh(), this.deps.nodeName, pod);
    if (!w) return { ok: false, code: AGENT_ERRORS.notInMesh, message: this.unknown(pod) };
    if (!w.hbone) return { ok: true, captured: false, detail: "not in an ambient namespace" };
    const st = this.deps.enrolment(w.uid);
    if (st?.state === "ready") return { ok: true, captured: true, detail: "enrolled" };
    return {
      ok: false,
      code: AGENT_ERRORS.notCaptured,
      message: `pod ${pod.namespace}/${pod.name} is not enrolled: ${st?.error ?? st?.state ?? "not started"}`,
    };
  }

  async remove(pod: PodRegistration): Promise<void> {
    this.deps.reconcile();
    await this.deps.release(pod);
  }

  private unknown(pod: PodRegistration): string {
    return `pod ${pod.namespace}/${pod.name} with address ${pod.ips.join(", ")} is not in the mesh config for node ${this.deps.nodeName} (is its Pod resource applied with spec.nodeName and status.podIP?)`;
  }

  private async waitEnrolled(pod: PodRegistration): Promise<AgentReply> {
    const deadline = Date.now() + (this.deps.waitMs ?? 30_000);
    let last: EnrolState;
    for (;;) {
      const w = workloadFor(this.deps.mesh(), this.deps.nodeName, pod);
      if (w && !w.hbone) return { ok: true, captured: false, detail: "not in an ambient namespace" };
      if (w) {
        last = this.deps.enrolment(w.uid);
        if (last?.state === "ready") return { ok: true, captured: true, detail: `enrolled as ${w.spiffeId}` };
      }
      if (Date.now() >= deadline) {
        return w
          ? {
              ok: false,
              code: AGENT_ERRORS.enrolFailed,
              message: `pod ${pod.namespace}/${pod.name} could not be enrolled: ${last?.error ?? "still starting"}`,
            }
          : { ok: false, code: AGENT_ERRORS.notInMesh, message: this.unknown(pod) };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
