// The systems under test, wired on loopback with the same backend and the same client for all:
//   direct  — client → backend (127.0.52.1:9100; iperf3 server 127.0.52.1:5201)
//   ambit   — client (pod 127.0.51.1 on node n1) → SOCKS5 127.0.51.1:15001 → `ambit node` n1 →
//             HBONE (HTTP/2 CONNECT, mTLS 1.3) → 127.0.52.1:15008 `ambit node` n2 → backend;
//             a real `ambit control-plane` is the CA and pushes the config over xDS.
//   haproxy — client → HAProxy (127.0.51.1:16001) → mTLS 1.3, ECDSA P-256, one TLS connection per
//             client connection → HAProxy (127.0.52.1:16008) → backend. The C peer.
// Loopback mode is how Ambit's own tests and benchmarks run its node proxy without root: an
// application names its destination with SOCKS5 (iperf3 goes through proxychains4 for it).
// TODO(netns): the lab topology (`ambit lab up`: pods in network namespaces, in-pod iptables
// capture, no SOCKS) is the next topology to add behind the same `System` interface.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run, start, stop, type Started } from "./procs.js";
import type { Target } from "./socks.js";

export const BENCH_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const REPO_ROOT = join(BENCH_ROOT, "..");
const AMBIT = join(REPO_ROOT, "bin", "ambit.js");

export type SystemName = "direct" | "ambit" | "haproxy";

export interface ProxyProcess {
  /** "client side" or "server side" of the two hops. */
  role: "client-side" | "server-side";
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
  proxies: ProxyProcess[];
}

export interface Topology {
  systems: System[];
  describe: Record<string, string>;
  close(): Promise<void>;
}

// The bench's own loopback ranges (other suites run on the same machine at the same time): pods in
// 127.0.51.0/24–127.0.54.0/24, the proxies' admin/metrics/readiness hosts in 127.0.10.51–59.
const CLIENT_POD = "127.0.51.1";
const SERVER_POD = "127.0.52.1";
const SERVICE_VIP = "10.96.0.77";
const HTTP_PORT = 9100;
const IPERF_PORT = 5201;

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

function haproxyConfig(dir: string, side: "client" | "server"): string {
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
    [16001, 16008, HTTP_PORT],
    [16002, 16009, IPERF_PORT],
  ];
  if (side === "client")
    return (
      global +
      pairs
        .map(
          ([front, tunnel], i) => `listen out${i}
  bind ${CLIENT_POD}:${front}
  server peer ${SERVER_POD}:${tunnel} ssl crt ${dir}/client.pem ca-file ${dir}/ca.pem verify required
`,
        )
        .join("")
    );
  return (
    global +
    pairs
      .map(
        ([, tunnel, app], i) => `listen in${i}
  bind ${SERVER_POD}:${tunnel} ssl crt ${dir}/server.pem ca-file ${dir}/ca.pem verify required
  server app ${SERVER_POD}:${app}
`,
      )
      .join("")
  );
}

export async function loopbackTopology(say: (line: string) => void): Promise<Topology> {
  const work = mkdtempSync(join(tmpdir(), "ambit-bench-"));
  const started: Started[] = [];
  const cleanup = async (): Promise<void> => {
    for (const s of started.reverse()) await stop(s.child, 5_000);
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const env = { ...process.env, AMBIT_LOG_LEVEL: "warn" };
    const state = join(work, "cp");
    mkdirSync(join(state, "config"), { recursive: true });
    writeFileSync(join(state, "config", "mesh.yaml"), MESH);

    const backend = await start(
      [
        process.execPath,
        join(BENCH_ROOT, "dist", "src", "backend.js"),
        SERVER_POD,
        String(HTTP_PORT),
        "1024",
      ],
      /listening/,
    );
    started.push(backend);
    const iperfServer = await start(
      ["iperf3", "-s", "--forceflush", "-B", SERVER_POD, "-p", String(IPERF_PORT)],
      /listening/,
    );
    started.push(iperfServer);

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
    const nodes: Started[] = [];
    for (const [i, name] of ["n1", "n2"].entries()) {
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
          AMBIT,
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
      const host = `127.0.10.${51 + i}`;
      const node = await start(
        [
          process.execPath,
          AMBIT,
          "node",
          "--control-plane",
          `127.0.0.1:${grpcPort}`,
          "--node-name",
          name,
          "--credentials",
          creds,
          "--admin-addr",
          `${host}:15000`,
          "--metrics-addr",
          `${host}:15020`,
          "--ready-addr",
          `${host}:15021`,
        ],
        null,
        { env },
      );
      started.push(node);
      nodes.push(node);
      await waitHttp200(`http://${host}:15021/healthz/ready`, 30_000);
    }
    say(`ambit: control plane and nodes n1 (pid ${nodes[0]?.pid}), n2 (pid ${nodes[1]?.pid}) ready`);

    const certs = join(work, "certs");
    mkdirSync(certs);
    await makeCerts(certs);
    const haproxies: Started[] = [];
    for (const side of ["server", "client"] as const) {
      const cfg = join(work, `haproxy-${side}.cfg`);
      writeFileSync(cfg, haproxyConfig(certs, side));
      await run(["haproxy", "-c", "-q", "-f", cfg], 10_000);
      const h = await start(["haproxy", "-db", "-f", cfg], null);
      started.push(h);
      haproxies.push(h);
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const h of haproxies)
      if (h.child.exitCode !== null) throw new Error(`haproxy exited:\n${h.output()}`);
    const [hapServer, hapClient] = haproxies as [Started, Started];
    say(`haproxy: client side pid ${hapClient.pid}, server side pid ${hapServer.pid}`);

    const chains = join(work, "proxychains.conf");
    writeFileSync(
      chains,
      `strict_chain\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nsocks5 ${CLIENT_POD} 15001\n`,
    );
    const [n1, n2] = nodes as [Started, Started];
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
        iperfPrefix: ["proxychains4", "-q", "-f", chains],
        proxies: [
          { role: "client-side", pid: n1.pid },
          { role: "server-side", pid: n2.pid },
        ],
      },
      {
        name: "haproxy",
        label: "C peer: HAProxy mTLS pair",
        http: { host: CLIENT_POD, port: 16001 },
        iperf: { host: CLIENT_POD, port: 16002 },
        iperfPrefix: [],
        proxies: [
          { role: "client-side", pid: hapClient.pid },
          { role: "server-side", pid: hapServer.pid },
        ],
      },
    ];
    const describe = {
      topology: "loopback (Ambit loopback mode: SOCKS5 to the node proxy; no capture)",
      ambit: "2 × `ambit node` (one Node.js process each) + `ambit control-plane`; AMBIT_LOG_LEVEL=warn",
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
