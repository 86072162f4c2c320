// The lab's waypoint controller (what istiod's gateway controller does in Kubernetes): every
// Gateway of class istio-waypoint in the control plane gets
//   - a Service of the Gateway's name selecting its pod (port 15008 "mesh", 15021 "status-port"),
//     which is what `istio.io/use-waypoint: NAME` resolves to, with a VIP from 10.96.250.0/24;
//   - a waypoint pod `NAME-waypoint` on a node: service account NAME (Istio's default), labelled
//     gateway.networking.k8s.io/gateway-name=NAME and outside capture (istio.io/dataplane-mode:
//     none, as Istio's waypoint pods are), running `ambit waypoint` with that node's credentials.
// Reconciling is idempotent: a Gateway whose pod runs is left alone, a dead pod is restarted, and
// the pod of a Gateway that was deleted is stopped and removed.
import { join } from "node:path";
import { stringify } from "yaml";
import { writeFileAtomic } from "../core/atomic-file.js";
import { AmbitError } from "../core/errors.js";
import { packageRoot } from "../core/paths.js";
import {
  controlPlaneCli,
  labApply,
  labApplyText,
  labDelete,
  labRemovePod,
  labRun,
  labState,
  saveLabState,
  waitProxyReady,
  type LabPod,
  type LabState,
} from "./lab.js";
import { alive, spawnDetached } from "./sys.js";

export const WAYPOINT_CLASS = "istio-waypoint";
const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
const VIP_PREFIX = "10.96.250.";

interface GatewayDoc {
  metadata: { name: string; namespace?: string };
  spec?: { gatewayClassName?: string };
}

const podName = (gateway: string): string => `${gateway}-0`;

/** The waypoint Gateways the control plane holds ("namespace/name"). */
async function waypointGateways(s: LabState): Promise<{ namespace: string; name: string }[]> {
  const text = await controlPlaneCli(s, ["get", "gateways", "-A", "-o", "json"]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AmbitError(
      "AMBIT_E_LAB",
      `the control plane's Gateway list is not JSON: ${text.slice(0, 200)}`,
    );
  }
  const items: GatewayDoc[] = Array.isArray(parsed)
    ? (parsed as GatewayDoc[])
    : ((parsed as { items?: GatewayDoc[] }).items ?? []);
  return items
    .filter((g) => g.spec?.gatewayClassName === WAYPOINT_CLASS)
    .map((g) => ({ namespace: g.metadata.namespace ?? "default", name: g.metadata.name }));
}

function vipFor(s: LabState, key: string): string {
  const used = s.waypoints ?? {};
  const existing = used[key];
  if (existing) return existing;
  const taken = new Set(Object.values(used));
  for (let i = 1; i < 255; i++) {
    const ip = `${VIP_PREFIX}${i}`;
    if (!taken.has(ip)) {
      s.waypoints = { ...used, [key]: ip };
      return ip;
    }
  }
  throw new AmbitError("AMBIT_E_LAB", `no free waypoint address left in ${VIP_PREFIX}0/24`);
}

function serviceDoc(namespace: string, name: string, vip: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, labels: { [GATEWAY_NAME_LABEL]: name } },
    spec: {
      clusterIP: vip,
      selector: { [GATEWAY_NAME_LABEL]: name },
      ports: [
        { name: "status-port", port: 15021, targetPort: 15021 },
        { name: "mesh", port: 15008, targetPort: 15008 },
      ],
    },
  };
}

function waypointArgv(s: LabState, pod: LabPod, gateway: string): string[] {
  return [
    process.execPath,
    join(packageRoot(), "bin", "ambit.js"),
    "waypoint",
    "--control-plane",
    s.controlPlane.grpc,
    "--gateway",
    gateway,
    "--credentials",
    join(s.dir, pod.node, "credentials"),
    "--address",
    "auto",
  ];
}

/** Start, restart or remove waypoint pods so that every waypoint Gateway has exactly one running. */
export async function reconcileWaypoints(say: (line: string) => void): Promise<void> {
  let s = labState();
  const gateways = await waypointGateways(s);
  const wanted = new Set(gateways.map((g) => `${g.namespace}/${g.name}`));
  for (const g of gateways) {
    const key = `${g.namespace}/${g.name}`;
    s = labState();
    const existing = s.pods.find((p) => p.namespace === g.namespace && p.name === podName(g.name));
    if (existing && alive(existing.pid)) continue;
    const vip = vipFor(s, key);
    await saveLabState(s);
    const svcPath = join(s.dir, "manifests", `waypoint-service-${g.namespace}-${g.name}.yaml`);
    await writeFileAtomic(svcPath, stringify(serviceDoc(g.namespace, g.name, vip)));
    await controlPlaneCli(s, ["apply", "-f", svcPath]);
    let pod: LabPod;
    if (existing) {
      // The pod (netns, address, resource) is still there: start its process again.
      pod = existing;
      pod.pid = spawnDetached(pod.netns, waypointArgv(s, pod, key), pod.log);
      await saveLabState(s);
    } else {
      pod = await labRun(
        {
          name: podName(g.name),
          namespace: g.namespace,
          serviceAccount: g.name,
          labels: { [GATEWAY_NAME_LABEL]: g.name },
          mesh: false,
          command: [],
          commandFor: (p) => waypointArgv(labState(), p, key),
        },
        () => undefined,
      );
    }
    await waitProxyReady(pod.netns, pod.pid, `waypoint ${pod.namespace}/${pod.name}`, pod.log);
    say(`waypoint ${key}: pod ${pod.name} on ${pod.node} at ${pod.ip}, Service ${g.name} ${vip}, ready`);
  }
  // Gateways that are gone: stop and remove their pods.
  s = labState();
  for (const key of Object.keys(s.waypoints ?? {})) {
    if (wanted.has(key)) continue;
    const [namespace = "", name = ""] = key.split("/");
    const pod = s.pods.find((p) => p.namespace === namespace && p.name === podName(name));
    if (pod) await labRemovePod(pod);
    s = labState();
    const rest = { ...(s.waypoints ?? {}) };
    delete rest[key];
    s.waypoints = rest;
    await saveLabState(s);
    await controlPlaneCli(s, ["delete", "service", name, "-n", namespace, "--ignore-not-found"]);
    say(`waypoint ${key}: Gateway deleted, pod removed`);
  }
}

/** `ambit lab apply`: apply, then run the waypoints any Gateway asks for. */
export async function labApplyWithWaypoints(
  paths: readonly string[],
  say: (line: string) => void,
): Promise<void> {
  for (const line of (await labApply(paths)).trimEnd().split("\n")) say(line);
  await reconcileWaypoints(say);
}

/** The same for YAML text (`ambit waypoint apply`). */
export async function labApplyTextWithWaypoints(
  text: string,
  name: string,
  say: (line: string) => void,
): Promise<void> {
  for (const line of (await labApplyText(text, name)).trimEnd().split("\n")) say(line);
  await reconcileWaypoints(say);
}

/** `ambit lab delete`: delete, then stop the waypoints whose Gateway went. */
export async function labDeleteWithWaypoints(
  o: Parameters<typeof labDelete>[0],
  say: (line: string) => void,
): Promise<void> {
  for (const line of (await labDelete(o)).trimEnd().split("\n")) say(line);
  await reconcileWaypoints(say);
}
