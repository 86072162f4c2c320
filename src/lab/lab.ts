// `ambit lab` (DESIGN §10): a virtual cluster made of network namespaces. An underlay namespace
// holds a bridge (10.250.0.0/24) and the control plane (10.250.0.1); each node is a namespace on
// that bridge running its own `ambit node` in capture mode and routing the other nodes' pod
// CIDRs (10.244.N.0/24) over the underlay; each pod is a namespace wired to its node by Debian's
// CNI plugins (bridge, host-local) with `ambit-cni` chained after them, invoked as a container
// runtime would. Everything the lab makes is named `ambit-*` and recorded in its directory, so
// `down` can remove it all — also after a crash — without touching anything of the host's.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { writeFileAtomic } from "../core/atomic-file.js";
import { AmbitError } from "../core/errors.js";
import { packageRoot } from "../core/paths.js";
import { cniAdd, cniDel, type CniInvocation, type ConfList } from "./cni-runtime.js";
import { alive, listNetns, netnsPids, nsExec, sh, spawnDetached, stopProcesses, waitFor } from "./sys.js";

export const UNDERLAY_NETNS = "ambit-underlay";
export const UNDERLAY_BRIDGE = "ambit-br0";
export const CONTROL_PLANE_IP = "10.250.0.1";
const GRPC_PORT = 15012;
const ADMIN_PORT = 15014;
const CNI_BIN_DIR = "/usr/lib/cni";
const LAB_NETNS = /^ambit-(underlay|node-\d+|pod-.+)$/;

export interface LabNode {
  name: string;
  netns: string;
  ip: string;
  podCIDR: string;
  pid: number;
}

export interface LabPod {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  netns: string;
  inMesh: boolean;
  serviceAccount: string;
  containerId: string;
  pid: number;
  log: string;
}

export interface LabState {
  dir: string;
  controlPlane: { netns: string; grpc: string; pid: number; stateDir: string };
  nodes: LabNode[];
  pods: LabPod[];
  namespaces: string[];
  /** Waypoint Gateways ("namespace/name") the lab runs a pod for → their Service's VIP. */
  waypoints?: Record<string, string>;
}

export function labDir(): string {
  return process.env.AMBIT_LAB_DIR ?? "/var/run/ambit-lab";
}

const statePath = (dir: string): string => join(dir, "state.json");
const nodeNetns = (i: number): string => `ambit-node-${i}`;
export const podNetns = (ns: string, name: string): string => `ambit-pod-${ns}-${name}`;

function ambitArgv(...args: string[]): string[] {
  return [process.execPath, join(packageRoot(), "bin", "ambit.js"), ...args];
}

function requireRoot(): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new AmbitError("AMBIT_E_LAB", "the lab creates network namespaces and must run as root");
  }
}

export function readState(dir = labDir()): LabState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(dir), "utf8")) as LabState;
  } catch {
    return undefined;
  }
}

function mustState(): LabState {
  const s = readState();
  if (!s) throw new AmbitError("AMBIT_E_LAB", `no lab is up (nothing in ${labDir()}); run \`ambit lab up\``);
  return s;
}

async function saveState(s: LabState): Promise<void> {
  await writeFileAtomic(statePath(s.dir), JSON.stringify(s, null, 2));
}

export const saveLabState = saveState;

/** Runs an `ambit` admin command against the lab's control plane (inside the underlay netns). */
export function controlPlaneCli(s: LabState, args: readonly string[], input?: string): Promise<string> {
  return nsExec(
    s.controlPlane.netns,
    ambitArgv(
      ...args,
      "--control-plane",
      `http://127.0.0.1:${ADMIN_PORT}`,
      "--state-dir",
      s.controlPlane.stateDir,
    ),
    input !== undefined ? { input } : {},
  );
}

/** `ambit node` for a lab node: capture mode, credentials and agent socket in the lab directory. */
function nodeArgv(s: LabState, node: LabNode, extra: readonly string[]): string[] {
  return ambitArgv(
    "node",
    "--control-plane",
    s.controlPlane.grpc,
    "--node-name",
    node.name,
    "--credentials",
    join(s.dir, node.name, "credentials"),
    "--mode",
    "capture",
    "--agent-socket",
    join(s.dir, node.name, "agent.sock"),
    "--drain",
    "1s",
    ...extra,
  );
}

function confList(dir: string, node: LabNode): ConfList {
  return {
    cniVersion: "1.0.0",
    name: "ambit-lab",
    plugins: [
      {
        type: "bridge",
        bridge: "cni0",
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: node.podCIDR }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: join(dir, "ipam", node.name),
        },
      },
      { type: "ambit-cni", agentSocket: join(dir, node.name, "agent.sock"), timeoutSeconds: 60 },
    ],
  };
}

function invocation(
  s: LabState,
  pod: { name: string; namespace: string; node: string; containerId: string },
): CniInvocation {
  const node = s.nodes.find((n) => n.name === pod.node);
  if (!node) throw new AmbitError("AMBIT_E_LAB", `no node ${pod.node} in the lab`);
  return {
    hostNetns: node.netns,
    cniPath: [CNI_BIN_DIR, join(packageRoot(), "bin")],
    containerId: pod.containerId,
    netns: `/var/run/netns/${podNetns(pod.namespace, pod.name)}`,
    ifName: "eth0",
    podName: pod.name,
    podNamespace: pod.namespace,
    cacheFile: join(s.dir, "cni-cache", `${pod.containerId}.json`),
  };
}

async function checkPrerequisites(): Promise<void> {
  for (const tool of ["ip", "iptables", "nsenter", "curl"]) {
    await sh("sh", ["-c", `command -v ${tool}`]).catch(() => {
      throw new AmbitError("AMBIT_E_LAB", `${tool} is not installed; run scripts/setup.sh`);
    });
  }
  for (const plugin of ["bridge", "host-local"]) {
    if (!existsSync(join(CNI_BIN_DIR, plugin))) {
      throw new AmbitError(
        "AMBIT_E_LAB",
        `CNI plugin ${join(CNI_BIN_DIR, plugin)} is missing; run scripts/setup.sh (it installs containernetworking-plugins)`,
      );
    }
  }
  const { loadNative } = await import("../node/capture/native.js");
  try {
    loadNative();
  } catch (err) {
    throw new AmbitError("AMBIT_E_CAPTURE", (err as Error).message);
  }
}

export interface UpResult {
  state: LabState;
  created: boolean;
}

/** Builds the lab, or reports the one already up. A lab left half-built by a crash is removed first. */
export async function labUp(nodes: number, say: (line: string) => void): Promise<UpResult> {
  requireRoot();
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 8) {
    throw new AmbitError("AMBIT_E_USAGE", `--nodes: expected 1 to 8, got ${nodes}`);
  }
  const existing = readState();
  if (existing && alive(existing.controlPlane.pid) && existing.nodes.every((n) => alive(n.pid))) {
    say(
      `lab already up in ${existing.dir} (${existing.nodes.length} nodes); \`ambit lab down\` first to rebuild it`,
    );
    return { state: existing, created: false };
  }
  if (existing || (await listNetns()).some((n) => LAB_NETNS.test(n))) {
    say("removing what is left of an earlier lab");
    await labDown(() => undefined);
  }
  await checkPrerequisites();
  const dir = labDir();
  for (const sub of ["logs", "ipam", "cni-cache", "manifests"])
    mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  const s: LabState = {
    dir,
    controlPlane: {
      netns: UNDERLAY_NETNS,
      grpc: `${CONTROL_PLANE_IP}:${GRPC_PORT}`,
      pid: 0,
      stateDir: join(dir, "control-plane"),
    },
    nodes: [],
    pods: [],
    namespaces: [],
  };
  await saveState(s);

  await sh("ip", ["netns", "add", UNDERLAY_NETNS]);
  await nsExec(UNDERLAY_NETNS, ["ip", "link", "set", "lo", "up"]);
  await nsExec(UNDERLAY_NETNS, ["ip", "link", "add", UNDERLAY_BRIDGE, "type", "bridge"]);
  await nsExec(UNDERLAY_NETNS, ["ip", "addr", "add", `${CONTROL_PLANE_IP}/24`, "dev", UNDERLAY_BRIDGE]);
  await nsExec(UNDERLAY_NETNS, ["ip", "link", "set", UNDERLAY_BRIDGE, "up"]);
  say(`underlay: netns ${UNDERLAY_NETNS}, bridge ${UNDERLAY_BRIDGE} 10.250.0.0/24`);

  const cpLog = join(dir, "logs", "control-plane.log");
  s.controlPlane.pid = spawnDetached(
    UNDERLAY_NETNS,
    ambitArgv(
      "control-plane",
      "--state-dir",
      s.controlPlane.stateDir,
      "--grpc-addr",
      `${CONTROL_PLANE_IP}:${GRPC_PORT}`,
      "--admin-addr",
      `127.0.0.1:${ADMIN_PORT}`,
      "--server-san",
      CONTROL_PLANE_IP,
    ),
    cpLog,
  );
  await saveState(s);
  await waitFor("the control plane (see " + cpLog + ")", 30_000, () => {
    if (!alive(s.controlPlane.pid))
      throw new AmbitError("AMBIT_E_LAB", `the control plane exited; see ${cpLog}`);
    return existsSync(cpLog) && readFileSync(cpLog, "utf8").includes("control plane ready");
  });
  say(
    `control plane: ${CONTROL_PLANE_IP}:${GRPC_PORT} (gRPC) in ${UNDERLAY_NETNS}, state in ${s.controlPlane.stateDir}`,
  );

  for (let i = 1; i <= nodes; i++) {
    const node: LabNode = {
      name: `node-${i}`,
      netns: nodeNetns(i),
      ip: `10.250.0.${10 + i}`,
      podCIDR: `10.244.${i}.0/24`,
      pid: 0,
    };
    await sh("ip", ["netns", "add", node.netns]);
    s.nodes.push(node);
    await saveState(s);
    await nsExec(node.netns, ["ip", "link", "set", "lo", "up"]);
    await sh("ip", [
      "link",
      "add",
      `ul${i}`,
      "netns",
      UNDERLAY_NETNS,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      node.netns,
    ]);
    await nsExec(UNDERLAY_NETNS, ["ip", "link", "set", `ul${i}`, "master", UNDERLAY_BRIDGE, "up"]);
    await nsExec(node.netns, ["ip", "addr", "add", `${node.ip}/24`, "dev", "eth0"]);
    await nsExec(node.netns, ["ip", "link", "set", "eth0", "up"]);
    await nsExec(node.netns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    mkdirSync(join(dir, node.name), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, node.name, "cni.conflist"), JSON.stringify(confList(dir, node), null, 2));
  }
  for (const a of s.nodes) {
    for (const b of s.nodes) {
      if (a !== b) await nsExec(a.netns, ["ip", "route", "add", b.podCIDR, "via", b.ip]);
    }
    // Pods outside capture (waypoints) talk to the control plane themselves: route replies back.
    await nsExec(UNDERLAY_NETNS, ["ip", "route", "add", a.podCIDR, "via", a.ip]);
  }
  for (const node of s.nodes) {
    const token = (await controlPlaneCli(s, ["join-token", "create", "--node", node.name])).trim();
    const log = join(dir, "logs", `${node.name}.log`);
    node.pid = spawnDetached(node.netns, nodeArgv(s, node, ["--join-token", token]), log);
    await saveState(s);
  }
  for (const node of s.nodes) await waitNodeReady(s, node);
  for (const node of s.nodes)
    say(`${node.name}: netns ${node.netns}, ${node.ip}, pods ${node.podCIDR}, node proxy pid ${node.pid}`);
  say(`lab up: ${nodes} node(s); state and logs in ${dir}`);
  return { state: s, created: true };
}

export async function waitNodeReady(s: LabState, node: LabNode, timeoutMs = 60_000): Promise<void> {
  await waitProxyReady(
    node.netns,
    node.pid,
    `node proxy ${node.name}`,
    join(s.dir, "logs", `${node.name}.log`),
    timeoutMs,
  );
}

/** Waits until the proxy (node or waypoint) in `netns` answers its readiness probe on 15021. */
export async function waitProxyReady(
  netns: string,
  pid: number,
  what: string,
  log: string,
  timeoutMs = 60_000,
): Promise<void> {
  await waitFor(`${what} to be ready (see ${log})`, timeoutMs, async () => {
    if (!alive(pid)) {
      const tail = existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-5).join("\n") : "";
      throw new AmbitError("AMBIT_E_LAB", `${what} exited; see ${log}\n${tail}`);
    }
    return nsExec(netns, ["curl", "-sf", "-m", "2", "http://127.0.0.1:15021/healthz/ready"]).then(
      () => true,
      () => false,
    );
  });
}

/** Removes everything the lab made: processes, pods (CNI DEL), namespaces, files. Safe to repeat. */
export async function labDown(say: (line: string) => void): Promise<void> {
  requireRoot();
  const s = readState();
  if (s) {
    await stopProcesses(s.pods.map((p) => p.pid));
    for (const pod of s.pods) {
      await cniDel(
        invocation(s, pod),
        confList(s.dir, s.nodes.find((n) => n.name === pod.node) ?? s.nodes[0]!),
      ).catch((err: unknown) =>
        say(`warning: CNI DEL of ${pod.namespace}/${pod.name}: ${(err as Error).message}`),
      );
    }
    await stopProcesses([...s.nodes.map((n) => n.pid), s.controlPlane.pid]);
  }
  const leftovers = (await listNetns()).filter((n) => LAB_NETNS.test(n));
  for (const ns of leftovers) await stopProcesses(await netnsPids(ns), 1_000);
  // Pods first, then nodes (their bridges and veths go with them), the underlay last.
  const order = (n: string): number => (n.startsWith("ambit-pod-") ? 0 : n.startsWith("ambit-node-") ? 1 : 2);
  for (const ns of leftovers.sort((a, b) => order(a) - order(b))) {
    await sh("ip", ["netns", "del", ns]).catch((err: unknown) => say(`warning: ${(err as Error).message}`));
    rmSync(join("/etc/netns", ns), { recursive: true, force: true });
  }
  rmSync(labDir(), { recursive: true, force: true });
  say(
    leftovers.length > 0 || s
      ? `lab down: removed ${leftovers.length} namespace(s) and ${labDir()}`
      : "no lab to remove",
  );
}

export interface RunPodOptions {
  name: string;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
  node?: string;
  mesh: boolean;
  command: readonly string[];
  /** The command, when it depends on the pod (its node, its address); replaces `command`. */
  commandFor?: (pod: LabPod) => string[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Creates a pod: its resource, its netns through CNI, and its process in the background. */
export async function labRun(o: RunPodOptions, say: (line: string) => void): Promise<LabPod> {
  requireRoot();
  const s = mustState();
  for (const [what, v] of [
    ["POD", o.name],
    ["--namespace", o.namespace],
    ["--sa", o.serviceAccount],
  ] as const) {
    if (!DNS_LABEL.test(v) || v.length > 40)
      throw new AmbitError("AMBIT_E_USAGE", `${what}: "${v}" is not a DNS label of at most 40 characters`);
  }
  if (o.command.length === 0 && !o.commandFor)
    throw new AmbitError("AMBIT_E_USAGE", "nothing to run: put the command after --");
  if (s.pods.some((p) => p.name === o.name && p.namespace === o.namespace)) {
    throw new AmbitError("AMBIT_E_LAB", `pod ${o.namespace}/${o.name} already exists`);
  }
  const nodeName = o.node ?? s.nodes[s.pods.length % s.nodes.length]?.name ?? "node-1";
  const node = s.nodes.find((n) => n.name === nodeName);
  if (!node)
    throw new AmbitError(
      "AMBIT_E_USAGE",
      `--node: no node ${nodeName} (nodes: ${s.nodes.map((n) => n.name).join(", ")})`,
    );
  if (!alive(node.pid)) throw new AmbitError("AMBIT_E_LAB", `node proxy ${node.name} is not running`);

  // A namespace the user already applied (labels such as istio.io/use-waypoint) is kept as it is.
  const applied = await controlPlaneCli(s, ["get", "namespace", o.namespace, "-o", "json"]).then(
    () => true,
    () => false,
  );
  if (!s.namespaces.includes(o.namespace) && !applied) {
    await applyDocs(s, `namespace-${o.namespace}`, [
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: o.namespace, labels: { "istio.io/dataplane-mode": "ambient" } },
      },
    ]);
  }
  if (!s.namespaces.includes(o.namespace)) {
    s.namespaces.push(o.namespace);
    await saveState(s);
  }
  const labels = { ...o.labels, ...(o.mesh ? {} : { "istio.io/dataplane-mode": "none" }) };
  const podDoc = (ip?: string): Record<string, unknown> => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: o.name, namespace: o.namespace, labels },
    spec: { nodeName: node.name, serviceAccountName: o.serviceAccount },
    ...(ip ? { status: { podIP: ip, podIPs: [{ ip }] } } : {}),
  });
  await applyDocs(s, `pod-${o.namespace}-${o.name}`, [podDoc()]);

  const netns = podNetns(o.namespace, o.name);
  const pod: LabPod = {
    name: o.name,
    namespace: o.namespace,
    node: node.name,
    ip: "",
    netns,
    inMesh: o.mesh,
    serviceAccount: o.serviceAccount,
    containerId: randomBytes(16).toString("hex"),
    pid: 0,
    log: join(s.dir, "logs", `pod-${o.namespace}-${o.name}.log`),
  };
  await sh("ip", ["netns", "add", netns]);
  s.pods.push(pod);
  await saveState(s);
  await nsExec(netns, ["ip", "link", "set", "lo", "up"]);
  // `ip netns exec` bind-mounts this over /etc/resolv.conf: cluster DNS, as a kubelet would write it.
  mkdirSync(join("/etc/netns", netns), { recursive: true });
  writeFileSync(
    join("/etc/netns", netns, "resolv.conf"),
    `nameserver 10.96.0.10\nsearch ${o.namespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n`,
  );
  const result = await cniAdd(invocation(s, pod), confList(s.dir, node));
  const ip = result.ips?.[0]?.address?.split("/")[0];
  if (!ip) throw new AmbitError("AMBIT_E_LAB", `CNI gave pod ${o.namespace}/${o.name} no address`);
  pod.ip = ip;
  await saveState(s);
  // The runtime reports the pod's address once CNI is done, as the kubelet does.
  await applyDocs(s, `pod-${o.namespace}-${o.name}`, [podDoc(ip)]);
  const argv = o.commandFor ? o.commandFor(pod) : ["sh", "-c", 'exec "$@"', "sh", ...o.command];
  pod.pid = spawnDetached(netns, argv, pod.log);
  await saveState(s);
  say(
    `pod ${o.namespace}/${o.name} on ${node.name}: ${ip}, netns ${netns}, ${o.mesh ? "in the mesh" : "outside the mesh"}; log ${pod.log}`,
  );
  return pod;
}

/** Removes one pod: its process, its network (CNI DEL), its netns and its resource. */
export async function labRemovePod(pod: LabPod): Promise<void> {
  const s = mustState();
  await stopProcesses([pod.pid]);
  const node = s.nodes.find((n) => n.name === pod.node) ?? s.nodes[0];
  if (node) await cniDel(invocation(s, pod), confList(s.dir, node)).catch(() => undefined);
  await sh("ip", ["netns", "del", pod.netns]).catch(() => undefined);
  rmSync(join("/etc/netns", pod.netns), { recursive: true, force: true });
  s.pods = s.pods.filter((p) => !(p.name === pod.name && p.namespace === pod.namespace));
  await saveState(s);
  await controlPlaneCli(s, ["delete", "pod", pod.name, "-n", pod.namespace, "--ignore-not-found"]);
}

async function applyDocs(s: LabState, file: string, docs: readonly Record<string, unknown>[]): Promise<void> {
  const path = join(s.dir, "manifests", `${file}.yaml`);
  await writeFileAtomic(path, docs.map((d) => stringify(d)).join("---\n"));
  await controlPlaneCli(s, ["apply", "-f", path]);
}

export function findPod(s: LabState, name: string, namespace?: string): LabPod {
  const matches = s.pods.filter(
    (p) => p.name === name && (namespace === undefined || p.namespace === namespace),
  );
  if (matches.length === 0)
    throw new AmbitError("AMBIT_E_LAB", `no pod ${namespace ? `${namespace}/` : ""}${name} in the lab`);
  if (matches.length > 1)
    throw new AmbitError("AMBIT_E_USAGE", `pod name ${name} is in several namespaces; pass --namespace`);
  return matches[0]!;
}

export function labState(): LabState {
  return mustState();
}

export async function labApply(paths: readonly string[]): Promise<string> {
  const s = mustState();
  return controlPlaneCli(s, ["apply", ...paths.flatMap((p) => ["-f", p === "-" ? p : resolve(p)])]);
}

/** `ambit delete` against the lab's control plane (files, or KIND NAME... in a namespace). */
export async function labDelete(o: {
  paths: readonly string[];
  kind?: string;
  names: readonly string[];
  namespace?: string;
  ignoreNotFound: boolean;
}): Promise<string> {
  const s = mustState();
  return controlPlaneCli(s, [
    "delete",
    ...o.paths.flatMap((p) => ["-f", p === "-" ? p : resolve(p)]),
    ...(o.kind ? [o.kind, ...o.names] : []),
    ...(o.namespace ? ["-n", o.namespace] : []),
    ...(o.ignoreNotFound ? ["--ignore-not-found"] : []),
  ]);
}

/** Apply YAML text through the lab's control plane (kept in the lab's manifests directory). */
export async function labApplyText(text: string, name: string): Promise<string> {
  const s = mustState();
  const path = join(s.dir, "manifests", `${name}.yaml`);
  await writeFileAtomic(path, text);
  return controlPlaneCli(s, ["apply", "-f", path]);
}

export async function labLogs(target: string, namespace?: string): Promise<string> {
  const s = mustState();
  if (target === "control-plane") return readFile(join(s.dir, "logs", "control-plane.log"), "utf8");
  const node = s.nodes.find((n) => n.name === target);
  if (node) return readFile(join(s.dir, "logs", `${node.name}.log`), "utf8");
  return readFile(findPod(s, target, namespace).log, "utf8").catch(() => "");
}

export interface LabStatus {
  dir: string;
  controlPlane: { netns: string; address: string; running: boolean };
  nodes: { name: string; netns: string; ip: string; podCIDR: string; running: boolean }[];
  pods: {
    name: string;
    namespace: string;
    node: string;
    ip: string;
    netns: string;
    inMesh: boolean;
    running: boolean;
  }[];
  underlay: { netns: string; interface: string; cidr: string };
}

export function labStatus(): LabStatus {
  const s = mustState();
  return {
    dir: s.dir,
    controlPlane: {
      netns: s.controlPlane.netns,
      address: s.controlPlane.grpc,
      running: alive(s.controlPlane.pid),
    },
    nodes: s.nodes.map((n) => ({
      name: n.name,
      netns: n.netns,
      ip: n.ip,
      podCIDR: n.podCIDR,
      running: alive(n.pid),
    })),
    pods: s.pods.map((p) => ({
      name: p.name,
      namespace: p.namespace,
      node: p.node,
      ip: p.ip,
      netns: p.netns,
      inMesh: p.inMesh,
      running: alive(p.pid),
    })),
    underlay: { netns: UNDERLAY_NETNS, interface: UNDERLAY_BRIDGE, cidr: "10.250.0.0/24" },
  };
}

/** Restart a node's proxy (the pods keep their netns and redirection; it re-enrols them). */
export async function labRestartNode(name: string, stop: boolean): Promise<void> {
  const s = mustState();
  const node = s.nodes.find((n) => n.name === name);
  if (!node) throw new AmbitError("AMBIT_E_USAGE", `no node ${name}`);
  await stopProcesses([node.pid]);
  if (stop) return;
  node.pid = spawnDetached(node.netns, nodeArgv(s, node, []), join(s.dir, "logs", `${node.name}.log`));
  await saveState(s);
  await waitNodeReady(s, node);
}
