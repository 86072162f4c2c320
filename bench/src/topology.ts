// The systems under test, wired on loopback with the same backend and the same client for all:
//   direct  — client → backend (127.0.52.1:9100; iperf3 server 127.0.52.1:5201)
//   ambit   — client (pod 127.0.51.1 on node n1) → SOCKS5 127.0.51.1:15001 → `ambit node` n1 →
//             HBONE (HTTP/2 CONNECT, mTLS 1.3) → 127.0.52.1:15008 `ambit node` n2 → backend;
//             a real `ambit control-plane` is the CA and pushes the config over xDS.
//   ambit-l7 — the same client pod and nodes, to a Service labelled istio.io/use-waypoint: n1 →
//             HBONE → `ambit waypoint` (pod 127.0.53.1, L7 for the `http` port, L4 for `tcp-iperf`)
//             → HBONE → n2 → backend.
//   haproxy — client → HAProxy (127.0.51.1:16001) → mTLS 1.3, ECDSA P-256, one TLS connection per
//             client connection → HAProxy (127.0.52.1:16008) → backend. The C peer.
//   ambit-l4-before (only with `--before DIR`) — the L4 path through two node proxies run from
//             another Ambit checkout (e.g. the main branch before an optimization), nodes n3/n4
//             with pods 127.0.54.1 → 127.0.54.2 (the same backend program listens there too), so
//             that before/after are compared in one interleaved run.
//   ambit-l7-before (only with `--before DIR`) — the L7 path of the other checkout: n3 → HBONE →
//             its own `ambit waypoint` (pod 127.0.54.3, Gateway bench/waypoint-before, admin host
//             127.0.10.56) → HBONE → n4 → the same backend program on 127.0.54.2.
// Loopback mode is how Ambit's own tests and benchmarks run its node proxy without root: an
// application names its destination with SOCKS5 (iperf3 goes through proxychains4 for it).
// As root the bench runs the same systems in the lab instead (netns-topology.ts).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { run, start, stop, type Started } from "./procs.js";
import type { Target } from "./socks.js";

export const BENCH_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const REPO_ROOT = join(BENCH_ROOT, "..");
const AMBIT = join(REPO_ROOT, "bin", "ambit.js");

export type SystemName = "direct" | "ambit" | "ambit-l7" | "haproxy" | "ambit-l4-before" | "ambit-l7-before";

export type ProxyRole = "client-side" | "server-side" | "waypoint";

export interface ProxyProcess {
  /** "client side" or "server side" of the two hops, or the waypoint between them (L7). */
  role: ProxyRole;
  pid: number;
}

export interface System {
  name: SystemName;
  label: string;
  /** Where the HTTP client connects (through `socks` when set). */
  http: Target;
  socks?: Target;
  /** iperf3 client: server address and port, and a command prefix (proxychains4 for SOCKS). */
  iperf: Target;
  iperfPrefix: string[];
  /** Command prefix for the client programs (load generator, iperf3): `ip netns exec POD` in netns mode. */
  exec?: string[];
  proxies: ProxyProcess[];
}

export interface Topology {
  systems: System[];
  describe: Record<string, string>;
  close(): Promise<void>;
}

export interface TopologyOptions {
  /** Another Ambit checkout (built) whose node proxies run the `ambit-l4-before` system. */
  before?: string;
  /** Extra Node.js flags for every Ambit proxy process (e.g. `--cpu-prof --cpu-prof-dir DIR`). */
  proxyNodeArgs?: string[];
}

// The bench's own loopback ranges (other suites run on the same machine at the same time): pods in
// 127.0.51.0/24–127.0.54.0/24, the proxies' admin/metrics/readiness hosts in 127.0.10.51–59
// (n1, n2, waypoint, n3, n4, waypoint-before: .51–.56).
const CLIENT_POD = "127.0.51.1";
const SERVER_POD = "127.0.52.1";
const WAYPOINT_POD = "127.0.53.1";
const BEFORE_CLIENT_POD = "127.0.54.1";
const BEFORE_SERVER_POD = "127.0.54.2";
const BEFORE_WAYPOINT_POD = "127.0.54.3";
const SERVICE_VIP = "10.96.0.77";
const L7_SERVICE_VIP = "10.96.0.78";
const BEFORE_SERVICE_VIP = "10.96.0.79";
const WAYPOINT_VIP = "10.96.0.80";
const BEFORE_L7_SERVICE_VIP = "10.96.0.81";
const BEFORE_WAYPOINT_VIP = "10.96.0.82";
export const HTTP_PORT = 9100;
export const IPERF_PORT = 5201;
/** HAProxy's front ports on the client side (HTTP, iperf3); the server side listens on +7. */
export const HAPROXY_HTTP_PORT = 16001;
export const HAPROXY_IPERF_PORT = 16002;

const MESH = `apiVersion: v1
kind: Namespace
metadata: { name: bench, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: bench, labels: { app: client } }
spec: { nodeName: n1, serviceAccountName: client }
status: { podIP: ${CLIENT_POD} }
---
apiVersion: v1
kind: Pod
metadata: { name: server, namespace: bench, labels: { app: server } }
spec: { nodeName: n2, serviceAccountName: server }
status: { podIP: ${SERVER_POD} }
---
apiVersion: v1
kind: Service
metadata: { name: server, namespace: bench }
spec:
  selector: { app: server }
  clusterIP: ${SERVICE_VIP}
  ports: [{ name: http, port: ${HTTP_PORT} }, { name: iperf, port: ${IPERF_PORT} }]
---
# Ambit L7: the same backend pod behind a second Service that names a waypoint. Its HTTP port goes
# through the waypoint's L7 path; its tcp- port is passed through by the waypoint at L4.
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: bench, labels: { istio.io/waypoint-for: service } }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint-1
  namespace: bench
  labels: { gateway.networking.k8s.io/gateway-name: waypoint, istio.io/dataplane-mode: none }
spec: { nodeName: n1, serviceAccountName: waypoint }
status: { podIP: ${WAYPOINT_POD} }
---
apiVersion: v1
kind: Service
metadata: { name: waypoint, namespace: bench }
spec:
  selector: { gateway.networking.k8s.io/gateway-name: waypoint }
  clusterIP: ${WAYPOINT_VIP}
  ports: [{ name: mesh, port: 15008 }]
---
apiVersion: v1
kind: Service
metadata: { name: server-l7, namespace: bench, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: server }
  clusterIP: ${L7_SERVICE_VIP}
  ports: [{ name: http, port: ${HTTP_PORT} }, { name: tcp-iperf, port: ${IPERF_PORT} }]
`;

const BEFORE_MESH = `---
# ambit-l4-before: the other checkout's node proxies n3 and n4, with their own client and server pods.
apiVersion: v1
kind: Pod
metadata: { name: client-before, namespace: bench, labels: { app: client-before } }
spec: { nodeName: n3, serviceAccountName: client }
status: { podIP: ${BEFORE_CLIENT_POD} }
---
apiVersion: v1
kind: Pod
metadata: { name: server-before, namespace: bench, labels: { app: server-before } }
spec: { nodeName: n4, serviceAccountName: server }
status: { podIP: ${BEFORE_SERVER_POD} }
---
apiVersion: v1
kind: Service
metadata: { name: server-before, namespace: bench }
spec:
  selector: { app: server-before }
  clusterIP: ${BEFORE_SERVICE_VIP}
  ports: [{ name: http, port: ${HTTP_PORT} }, { name: iperf, port: ${IPERF_PORT} }]
---
# ambit-l7-before: the other checkout's waypoint (on n3), for a second Service of server-before.
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint-before, namespace: bench, labels: { istio.io/waypoint-for: service } }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint-before-1
  namespace: bench
  labels: { gateway.networking.k8s.io/gateway-name: waypoint-before, istio.io/dataplane-mode: none }
spec: { nodeName: n3, serviceAccountName: waypoint-before }
status: { podIP: ${BEFORE_WAYPOINT_POD} }
---
apiVersion: v1
kind: Service
metadata: { name: waypoint-before, namespace: bench }
spec:
  selector: { gateway.networking.k8s.io/gateway-name: waypoint-before }
  clusterIP: ${BEFORE_WAYPOINT_VIP}
  ports: [{ name: mesh, port: 15008 }]
---
apiVersion: v1
kind: Service
metadata: { name: server-l7-before, namespace: bench, labels: { istio.io/use-waypoint: waypoint-before } }
spec:
  selector: { app: server-before }
  clusterIP: ${BEFORE_L7_SERVICE_VIP}
  ports: [{ name: http, port: ${HTTP_PORT} }, { name: tcp-iperf, port: ${IPERF_PORT} }]
`;

async function waitHttp200(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  let last = "";
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready in ${ms} ms: ${last}`);
}

/** A CA and two leaf certificates (ECDSA P-256) for the HAProxy pair, made with openssl. */
async function makeCerts(dir: string): Promise<void> {
  const o = (args: string[]): Promise<string> => run(["openssl", ...args], 30_000, { cwd: dir });
  await o(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
  await o([
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-subj",
    "/CN=bench-ca",
    "-days",
    "2",
    "-out",
    "ca.pem",
  ]);
  for (const name of ["client", "server"]) {
    writeFileSync(
      join(dir, `${name}.ext`),
      `subjectAltName=URI:spiffe://cluster.local/ns/bench/sa/${name}\nextendedKeyUsage=serverAuth,clientAuth\n`,
    );
    await o(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`]);
    await o(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${name}`, "-out", `${name}.csr`]);
    await o([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ]);
    await run(["sh", "-c", `cat ${name}.crt ${name}.key > ${name}.pem`], 5_000, { cwd: dir });
  }
}

/** One side of the HAProxy mTLS pair between `clientIp` and `serverIp` (certificates in `dir`). */
function haproxyConfig(
  dir: string,
  side: "client" | "server",
  clientIp = CLIENT_POD,
  serverIp = SERVER_POD,
): string {
  const global = `global
  maxconn 9900
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode tcp
  timeout connect 5s
  timeout client 10m
  timeout server 10m
`;
  const pairs: [number, number, number][] = [
    [HAPROXY_HTTP_PORT, HAPROXY_HTTP_PORT + 7, HTTP_PORT],
    [HAPROXY_IPERF_PORT, HAPROXY_IPERF_PORT + 7, IPERF_PORT],
  ];
  if (side === "client")
    return (
      global +
      pairs
        .map(
          ([front, tunnel], i) => `listen out${i}
  bind ${clientIp}:${front}
  server peer ${serverIp}:${tunnel} ssl crt ${dir}/client.pem ca-file ${dir}/ca.pem verify required
`,
        )
        .join("")
    );
  return (
    global +
    pairs
      .map(
        ([, tunnel, app], i) => `listen in${i}
  bind ${serverIp}:${tunnel} ssl crt ${dir}/server.pem ca-file ${dir}/ca.pem verify required
  server app ${serverIp}:${app}
`,
      )
      .join("")
  );
}

/**
 * The C peer: certificates, then HAProxy's server side and client side (each through `wrap`, e.g.
 * `ip netns exec POD`), added to `started`; resolves with [client side, server side].
 */
export async function startHaproxyPair(
  work: string,
  clientIp: string,
  serverIp: string,
  started: Started[],
  wrap: (side: "client" | "server") => string[] = () => [],
): Promise<[Started, Started]> {
  const certs = join(work, "certs");
  mkdirSync(certs);
  await makeCerts(certs);
  const haproxies: Started[] = [];
  for (const side of ["server", "client"] as const) {
    const cfg = join(work, `haproxy-${side}.cfg`);
    writeFileSync(cfg, haproxyConfig(certs, side, clientIp, serverIp));
    await run(["haproxy", "-c", "-q", "-f", cfg], 10_000);
    const h = await start([...wrap(side), "haproxy", "-db", "-f", cfg], null);
    started.push(h);
    haproxies.push(h);
  }
  await new Promise((r) => setTimeout(r, 300));
  for (const h of haproxies) if (h.child.exitCode !== null) throw new Error(`haproxy exited:\n${h.output()}`);
  const [server, client] = haproxies as [Started, Started];
  return [client, server];
}

export async function loopbackTopology(
  say: (line: string) => void,
  opts: TopologyOptions = {},
): Promise<Topology> {
  const work = mkdtempSync(join(tmpdir(), "ambit-bench-"));
  const started: Started[] = [];
  const cleanup = async (): Promise<void> => {
    for (const s of started.reverse()) await stop(s.child, 10_000);
    rmSync(work, { recursive: true, force: true });
  };
  const beforeBin = opts.before ? join(resolve(opts.before), "bin", "ambit.js") : undefined;
  if (beforeBin && !existsSync(beforeBin)) throw new Error(`--before ${opts.before}: no ${beforeBin}`);
  try {
    const env = { ...process.env, AMBIT_LOG_LEVEL: process.env.AMBIT_LOG_LEVEL ?? "warn" };
    const state = join(work, "cp");
    mkdirSync(join(state, "config"), { recursive: true });
    writeFileSync(join(state, "config", "mesh.yaml"), MESH + (beforeBin ? BEFORE_MESH : ""));

    const serverPods = beforeBin ? [SERVER_POD, BEFORE_SERVER_POD] : [SERVER_POD];
    const backend = await start(
      [
        process.execPath,
        join(BENCH_ROOT, "dist", "src", "backend.js"),
        serverPods.join(","),
        String(HTTP_PORT),
        "1024",
      ],
      new RegExp(serverPods.map((p) => `listening ${p.replace(/\./g, "\\.")}`).join("[^]*")),
    );
    started.push(backend);
    for (const pod of serverPods) {
      const iperfServer = await start(
        ["iperf3", "-s", "--forceflush", "-B", pod, "-p", String(IPERF_PORT)],
        /listening/,
      );
      started.push(iperfServer);
    }

    const cp = await start(
      [
        process.execPath,
        AMBIT,
        "control-plane",
        "--state-dir",
        state,
        "--grpc-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
      ],
      /control plane ready: grpc \S+:(\d+) admin \S+:(\d+)/,
      { env },
    );
    started.push(cp);
    const grpcPort = cp.match?.[1] ?? "";
    const adminUrl = `http://127.0.0.1:${cp.match?.[2] ?? ""}`;
    const proxyArgs = opts.proxyNodeArgs ?? [];

    /** Join node `name` with the CLI of `bin` and start its node proxy (admin etc. on `host`). */
    const startNode = async (bin: string, name: string, host: string): Promise<Started> => {
      const creds = join(work, name);
      const token = (
        await run(
          [
            process.execPath,
            AMBIT,
            "join-token",
            "create",
            "--node",
            name,
            "--control-plane",
            adminUrl,
            "--state-dir",
            state,
          ],
          30_000,
          { env },
        )
      ).trim();
      await run(
        [
          process.execPath,
          bin,
          "node",
          "join",
          "--control-plane",
          `127.0.0.1:${grpcPort}`,
          "--token",
          token,
          "--out",
          creds,
        ],
        30_000,
        { env },
      );
      const node = await start(
        [
          process.execPath,
          ...proxyArgs,
          bin,
          "node",
          "--control-plane",
          `127.0.0.1:${grpcPort}`,
          "--node-name",
          name,
          "--credentials",
          creds,
          // Short drain: the bench stops the proxies at the end (and --cpu-prof writes at exit).
          "--drain",
          "2s",
          ...adminArgs(host),
        ],
        null,
        { env },
      );
      started.push(node);
      await waitHttp200(`http://${host}:15021/healthz/ready`, 30_000);
      return node;
    };
    const n1 = await startNode(AMBIT, "n1", "127.0.10.51");
    const n2 = await startNode(AMBIT, "n2", "127.0.10.52");
    say(`ambit: control plane and nodes n1 (pid ${n1.pid}), n2 (pid ${n2.pid}) ready`);
    /** Start `bin`'s waypoint for Gateway bench/`gateway` with node `node`'s credentials. */
    const startWaypoint = async (
      bin: string,
      gateway: string,
      node: string,
      pod: string,
      host: string,
    ): Promise<Started> => {
      const wp = await start(
        [
          process.execPath,
          ...proxyArgs,
          bin,
          "waypoint",
          "--control-plane",
          `127.0.0.1:${grpcPort}`,
          "--gateway",
          `bench/${gateway}`,
          "--credentials",
          join(work, node),
          "--address",
          pod,
          ...adminArgs(host),
        ],
        null,
        { env },
      );
      started.push(wp);
      await waitHttp200(`http://${host}:15021/healthz/ready`, 30_000);
      return wp;
    };
    const wp = await startWaypoint(AMBIT, "waypoint", "n1", WAYPOINT_POD, "127.0.10.53");
    say(`ambit: waypoint bench/waypoint (pid ${wp.pid}) ready`);
    let before: [Started, Started, Started] | undefined;
    if (beforeBin) {
      const n3 = await startNode(beforeBin, "n3", "127.0.10.54");
      const n4 = await startNode(beforeBin, "n4", "127.0.10.55");
      const wpBefore = await startWaypoint(
        beforeBin,
        "waypoint-before",
        "n3",
        BEFORE_WAYPOINT_POD,
        "127.0.10.56",
      );
      before = [n3, n4, wpBefore];
      say(
        `ambit (before, ${opts.before}): nodes n3 (pid ${n3.pid}), n4 (pid ${n4.pid}), waypoint bench/waypoint-before (pid ${wpBefore.pid}) ready`,
      );
    }

    const [hapClient, hapServer] = await startHaproxyPair(work, CLIENT_POD, SERVER_POD, started);
    say(`haproxy: client side pid ${hapClient.pid}, server side pid ${hapServer.pid}`);

    const chains = (pod: string): string[] => {
      const file = join(work, `proxychains-${pod}.conf`);
      writeFileSync(
        file,
        `strict_chain\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nsocks5 ${pod} 15001\n`,
      );
      return ["proxychains4", "-q", "-f", file];
    };
    const systems: System[] = [
      {
        name: "direct",
        label: "direct (no mesh)",
        http: { host: SERVER_POD, port: HTTP_PORT },
        iperf: { host: SERVER_POD, port: IPERF_PORT },
        iperfPrefix: [],
        proxies: [],
      },
      {
        name: "ambit",
        label: "Ambit L4 (node proxy → HBONE → node proxy)",
        http: { host: SERVICE_VIP, port: HTTP_PORT },
        socks: { host: CLIENT_POD, port: 15001 },
        iperf: { host: SERVICE_VIP, port: IPERF_PORT },
        iperfPrefix: chains(CLIENT_POD),
        proxies: [
          { role: "client-side", pid: n1.pid },
          { role: "server-side", pid: n2.pid },
        ],
      },
      {
        name: "ambit-l7",
        label: "Ambit L7 (node proxy → HBONE → waypoint → HBONE → node proxy)",
        http: { host: L7_SERVICE_VIP, port: HTTP_PORT },
        socks: { host: CLIENT_POD, port: 15001 },
        iperf: { host: L7_SERVICE_VIP, port: IPERF_PORT },
        iperfPrefix: chains(CLIENT_POD),
        proxies: [
          { role: "client-side", pid: n1.pid },
          { role: "waypoint", pid: wp.pid },
          { role: "server-side", pid: n2.pid },
        ],
      },
      {
        name: "haproxy",
        label: "C peer: HAProxy mTLS pair",
        http: { host: CLIENT_POD, port: HAPROXY_HTTP_PORT },
        iperf: { host: CLIENT_POD, port: HAPROXY_IPERF_PORT },
        iperfPrefix: [],
        proxies: [
          { role: "client-side", pid: hapClient.pid },
          { role: "server-side", pid: hapServer.pid },
        ],
      },
    ];
    if (before)
      systems.push(
        {
          name: "ambit-l4-before",
          label: `Ambit L4 from ${opts.before} (the "before" build)`,
          http: { host: BEFORE_SERVICE_VIP, port: HTTP_PORT },
          socks: { host: BEFORE_CLIENT_POD, port: 15001 },
          iperf: { host: BEFORE_SERVICE_VIP, port: IPERF_PORT },
          iperfPrefix: chains(BEFORE_CLIENT_POD),
          proxies: [
            { role: "client-side", pid: before[0].pid },
            { role: "server-side", pid: before[1].pid },
          ],
        },
        {
          name: "ambit-l7-before",
          label: `Ambit L7 from ${opts.before} (the "before" build: its nodes and waypoint)`,
          http: { host: BEFORE_L7_SERVICE_VIP, port: HTTP_PORT },
          socks: { host: BEFORE_CLIENT_POD, port: 15001 },
          iperf: { host: BEFORE_L7_SERVICE_VIP, port: IPERF_PORT },
          iperfPrefix: chains(BEFORE_CLIENT_POD),
          proxies: [
            { role: "client-side", pid: before[0].pid },
            { role: "waypoint", pid: before[2].pid },
            { role: "server-side", pid: before[1].pid },
          ],
        },
      );
    const describe: Record<string, string> = {
      topology: "loopback (Ambit loopback mode: SOCKS5 to the node proxy; no capture)",
      ambit:
        "2 × `ambit node` (one Node.js process each) + `ambit waypoint` (L7 rows) + `ambit control-plane`; AMBIT_LOG_LEVEL=warn",
      haproxy: (await run(["haproxy", "-v"], 5_000)).split("\n")[0] ?? "",
      iperf3: (await run(["iperf3", "-v"], 5_000)).split("\n")[0] ?? "",
      openssl: (await run(["openssl", "version"], 5_000)).trim(),
    };
    if (opts.before)
      describe.before = `ambit-l4-before: node proxies from ${resolve(opts.before)}; ambit-l7-before: its node proxies and waypoint`;
    return { systems, describe, close: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function adminArgs(host: string): string[] {
  return [
    "--admin-addr",
    `${host}:15000`,
    "--metrics-addr",
    `${host}:15020`,
    "--ready-addr",
    `${host}:15021`,
  ];
}
