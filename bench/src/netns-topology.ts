// The systems under test in the lab (`ambit lab`, root): a real two-node mesh made of network
// namespaces, with in-pod iptables capture, so applications name their destination as they would
// in a cluster (no SOCKS, no proxychains). Two nodes, each a netns running its own `ambit node`
// in capture mode; the control plane in the underlay netns.
//   pods  — client (node-1, mesh) and server (node-2, mesh); client-plain (node-1) and
//           server-plain (node-2) outside the mesh (istio.io/dataplane-mode: none); the waypoint
//           pod the lab starts for the Gateway `bench/waypoint`. Every pod is a netns wired to its
//           node by Debian's CNI bridge plugin; pod-to-pod traffic between nodes crosses the
//           nodes' netns and the underlay bridge.
//   direct  — client-plain → server-plain (the same two nodes, no proxy).
//   ambit   — client → Service `server` VIP → captured by node-1's proxy → HBONE → node-2's
//             proxy → server.
//   ambit-l7 — client → Service `server-l7` (istio.io/use-waypoint) → node-1 → HBONE → waypoint
//             → HBONE → node-2 → server.
//   haproxy — client-plain → HAProxy in client-plain's netns → mTLS → HAProxy in server-plain's
//             netns → server-plain's backend.
// The load generator and iperf3 run inside the client pod's netns (`ip netns exec`); the proxies'
// PIDs come from the lab's state file. The bench builds its own lab and takes it down at the end;
// it refuses to run over a lab that is already up (netns names are global).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, start, stop, type Started } from "./procs.js";
import {
  BENCH_ROOT,
  HAPROXY_HTTP_PORT,
  HAPROXY_IPERF_PORT,
  HTTP_PORT,
  IPERF_PORT,
  REPO_ROOT,
  startHaproxyPair,
  type System,
  type Topology,
} from "./topology.js";

const AMBIT = join(REPO_ROOT, "bin", "ambit.js");
const NS = "bench";
const SERVICE_VIP = "10.96.0.77";
const L7_SERVICE_VIP = "10.96.0.78";

const SERVICES = `apiVersion: v1
kind: Namespace
metadata: { name: ${NS}, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Service
metadata: { name: server, namespace: ${NS} }
spec:
  selector: { app: server }
  clusterIP: ${SERVICE_VIP}
  ports: [{ name: http, port: ${HTTP_PORT} }, { name: iperf, port: ${IPERF_PORT} }]
---
# Ambit L7: the same server pod behind a second Service that names the waypoint. Its http port
# goes through the waypoint's L7 path; its tcp- port is passed through by the waypoint at L4.
apiVersion: v1
kind: Service
metadata: { name: server-l7, namespace: ${NS}, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: server }
  clusterIP: ${L7_SERVICE_VIP}
  ports: [{ name: http, port: ${HTTP_PORT} }, { name: tcp-iperf, port: ${IPERF_PORT} }]
`;

interface LabStateFile {
  nodes: { name: string; netns: string; pid: number }[];
  pods: { name: string; namespace: string; node: string; ip: string; netns: string; pid: number }[];
  controlPlane: { pid: number };
}

function labDir(): string {
  return process.env.AMBIT_LAB_DIR ?? "/var/run/ambit-lab";
}

function readLab(): LabStateFile | undefined {
  const file = join(labDir(), "state.json");
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as LabStateFile;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Fails unless a netns benchmark can build its lab here: root, and no lab already up. */
export function checkNetnsPossible(): void {
  if (!isRoot()) throw new Error("--topology netns builds an `ambit lab` and must run as root");
  const s = readLab();
  if (s && (alive(s.controlPlane.pid) || s.nodes.some((n) => alive(n.pid))))
    throw new Error(
      `a lab is up (${labDir()}); the netns benchmark builds its own lab: run \`ambit lab down\` first, or pass --topology loopback`,
    );
}

export async function netnsTopology(say: (line: string) => void): Promise<Topology> {
  checkNetnsPossible();
  const work = mkdtempSync(join(tmpdir(), "ambit-bench-netns-"));
  const started: Started[] = [];
  const env = { ...process.env, AMBIT_LOG_LEVEL: process.env.AMBIT_LOG_LEVEL ?? "warn" };
  const ambit = (args: string[], timeoutMs = 120_000): Promise<string> =>
    run([process.execPath, AMBIT, ...args], timeoutMs, { env });
  const cleanup = async (): Promise<void> => {
    for (const s of started.reverse()) await stop(s.child, 10_000);
    await ambit(["lab", "down"]).catch((err: unknown) => say(`warning: lab down: ${String(err)}`));
    rmSync(work, { recursive: true, force: true });
  };
  try {
    await ambit(["lab", "up", "--nodes", "2"], 300_000);
    const manifest = join(work, "services.yaml");
    writeFileSync(manifest, SERVICES);
    await ambit(["lab", "apply", "-f", manifest]);
    const pods: [name: string, node: string, mesh: boolean][] = [
      ["client", "node-1", true],
      ["server", "node-2", true],
      ["client-plain", "node-1", false],
      ["server-plain", "node-2", false],
    ];
    for (const [name, node, mesh] of pods)
      await ambit([
        "lab",
        "run",
        name,
        "-n",
        NS,
        "--sa",
        name.replace("-plain", ""),
        "--labels",
        `app=${name}`,
        "--node",
        node,
        ...(mesh ? [] : ["--no-mesh"]),
        "--",
        "sleep",
        "infinity",
      ]);
    await ambit(["waypoint", "apply", "-n", NS, "--name", "waypoint"], 180_000);
    const lab = readLab();
    if (!lab) throw new Error(`no lab state in ${labDir()} after \`ambit lab up\``);
    const pod = (name: string): LabStateFile["pods"][number] => {
      const p = lab.pods.find((x) => x.namespace === NS && x.name === name);
      if (!p) throw new Error(`lab has no pod ${NS}/${name}`);
      return p;
    };
    const nodePid = (name: string): number => {
      const n = lab.nodes.find((x) => x.name === name);
      if (!n) throw new Error(`lab has no node ${name}`);
      return n.pid;
    };
    const [client, server, clientPlain, serverPlain, waypoint] = [
      pod("client"),
      pod("server"),
      pod("client-plain"),
      pod("server-plain"),
      pod("waypoint-0"),
    ];
    const inPod = (p: { netns: string }): string[] => ["ip", "netns", "exec", p.netns];

    for (const p of [server, serverPlain]) {
      started.push(
        await start(
          [
            ...inPod(p),
            process.execPath,
            join(BENCH_ROOT, "dist", "src", "backend.js"),
            p.ip,
            String(HTTP_PORT),
            "1024",
          ],
          /listening/,
        ),
      );
      started.push(
        await start(
          [...inPod(p), "iperf3", "-s", "--forceflush", "-B", p.ip, "-p", String(IPERF_PORT)],
          /listening/,
        ),
      );
    }

    const [hapClient, hapServer] = await startHaproxyPair(
      work,
      clientPlain.ip,
      serverPlain.ip,
      started,
      (side) => inPod(side === "client" ? clientPlain : serverPlain),
    );

    // The mesh is ready once the client pod reaches the server through both Services.
    for (const vip of [SERVICE_VIP, L7_SERVICE_VIP]) await untilReachable(inPod(client), vip);
    const n1 = nodePid("node-1");
    const n2 = nodePid("node-2");
    say(
      `lab: node-1 (proxy pid ${n1}) with client ${client.ip} and client-plain ${clientPlain.ip}; node-2 (proxy pid ${n2}) with server ${server.ip} and server-plain ${serverPlain.ip}; waypoint ${waypoint.ip} on ${waypoint.node} (pid ${waypoint.pid})`,
    );
    const systems: System[] = [
      {
        name: "direct",
        label: "direct (no mesh: client-plain → server-plain)",
        http: { host: serverPlain.ip, port: HTTP_PORT },
        iperf: { host: serverPlain.ip, port: IPERF_PORT },
        iperfPrefix: [],
        exec: inPod(clientPlain),
        proxies: [],
      },
      {
        name: "ambit",
        label: "Ambit L4 (captured: node proxy → HBONE → node proxy)",
        http: { host: SERVICE_VIP, port: HTTP_PORT },
        iperf: { host: SERVICE_VIP, port: IPERF_PORT },
        iperfPrefix: [],
        exec: inPod(client),
        proxies: [
          { role: "client-side", pid: n1 },
          { role: "server-side", pid: n2 },
        ],
      },
      {
        name: "ambit-l7",
        label: "Ambit L7 (captured: node proxy → HBONE → waypoint → HBONE → node proxy)",
        http: { host: L7_SERVICE_VIP, port: HTTP_PORT },
        iperf: { host: L7_SERVICE_VIP, port: IPERF_PORT },
        iperfPrefix: [],
        exec: inPod(client),
        proxies: [
          { role: "client-side", pid: n1 },
          { role: "waypoint", pid: waypoint.pid },
          { role: "server-side", pid: n2 },
        ],
      },
      {
        name: "haproxy",
        label: "C peer: HAProxy mTLS pair (in client-plain's and server-plain's netns)",
        http: { host: clientPlain.ip, port: HAPROXY_HTTP_PORT },
        iperf: { host: clientPlain.ip, port: HAPROXY_IPERF_PORT },
        iperfPrefix: [],
        exec: inPod(clientPlain),
        proxies: [
          { role: "client-side", pid: hapClient.pid },
          { role: "server-side", pid: hapServer.pid },
        ],
      },
    ];
    const describe: Record<string, string> = {
      topology:
        "netns (`ambit lab`, 2 nodes: pods in network namespaces wired by the CNI bridge plugin, in-pod iptables capture; pod-to-pod traffic crosses both nodes' netns and the underlay bridge; direct and HAProxy run between two no-mesh pods on the same two nodes)",
      ambit:
        "2 × `ambit node` (capture mode, one Node.js process each) + the lab's waypoint pod (`ambit waypoint`, L7 rows) + `ambit control-plane`; AMBIT_LOG_LEVEL=warn",
      haproxy: (await run(["haproxy", "-v"], 5_000)).split("\n")[0] ?? "",
      iperf3: (await run(["iperf3", "-v"], 5_000)).split("\n")[0] ?? "",
      openssl: (await run(["openssl", "version"], 5_000)).trim(),
    };
    return { systems, describe, close: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Polls an HTTP GET from the pod to `vip` until it answers 200 (the mesh config has arrived). */
async function untilReachable(prefix: string[], vip: string): Promise<void> {
  const end = Date.now() + 60_000;
  let last = "";
  while (Date.now() < end) {
    try {
      const code = await run(
        [
          ...prefix,
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-m",
          "3",
          `http://${vip}:${HTTP_PORT}/`,
        ],
        10_000,
      );
      if (code.trim() === "200") return;
      last = `HTTP ${code}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${vip}:${HTTP_PORT} not reachable from the client pod in 60 s: ${last}`);
}
