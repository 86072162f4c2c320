// The shared set-up of the waypoint integration tests: a real control plane, two real node proxies
// (n1, n2; loopback mode) and a real `ambit waypoint` on n1, plus the helpers the tests drive it
// with (curl through the client pod's node proxy over SOCKS5, `ambit apply/delete`, polling, the
// metrics counter). Each test file passes its own namespace, loopback addresses and admin hosts so
// the files never collide with each other.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { joinNodeWithCli, startControlPlaneProcess, type ControlPlaneProcess } from "./control-plane.js";
import { startNodeProcess, startWaypointProcess, type NodeProcess } from "./node-proxy.js";
import { runAmbit } from "./repo.js";

const run = promisify(execFile);

/** A TCP port that was free a moment ago on `ip`. */
export async function freePort(ip = "127.0.0.1"): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, ip, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The sum of the Prometheus samples of `name` whose labels include all of `labels`. */
export function counter(metrics: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of metrics.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.split(" ").pop());
  }
  return total;
}

export interface MeshPreludeOptions {
  namespace: string;
  clientIp: string;
  waypointIp: string;
  waypointVip: string;
}

/**
 * The YAML every waypoint mesh starts with: the ambient Namespace, the istio-waypoint Gateway, the
 * waypoint Pod (on n1, dataplane-mode none) and its Service on 15008, and the client Pod on n1.
 * Callers append their own documents, each starting with `---`.
 */
export function meshPrelude(o: MeshPreludeOptions): string {
  return `
apiVersion: v1
kind: Namespace
metadata: { name: ${o.namespace}, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: ${o.namespace}, labels: { istio.io/waypoint-for: service } }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint-1
  namespace: ${o.namespace}
  labels: { gateway.networking.k8s.io/gateway-name: waypoint, istio.io/dataplane-mode: none }
spec: { nodeName: n1, serviceAccountName: waypoint }
status: { podIP: ${o.waypointIp} }
---
apiVersion: v1
kind: Service
metadata: { name: waypoint, namespace: ${o.namespace} }
spec:
  selector: { gateway.networking.k8s.io/gateway-name: waypoint }
  clusterIP: ${o.waypointVip}
  ports: [{ name: mesh, port: 15008 }]
---
apiVersion: v1
kind: Pod
metadata: { name: client-1, namespace: ${o.namespace}, labels: { app: client } }
spec: { nodeName: n1, serviceAccountName: client }
status: { podIP: ${o.clientIp} }
`;
}

export interface WaypointMeshOptions {
  /** The namespace of the waypoint (`<namespace>/waypoint`). */
  namespace: string;
  /** The client pod's IP: its node proxy's SOCKS5 listener is `<clientIp>:15001`. */
  clientIp: string;
  waypointIp: string;
  /** Admin hosts (bind :15000/15020/15021) of n1, n2 and the waypoint. */
  adminHosts: { n1: string; n2: string; waypoint: string };
  /** The full mesh.yaml the control plane starts with. */
  yaml: string;
  /** Prefix of the temp dirs (state and work). */
  tmpPrefix: string;
  /** curl --max-time (s) of `curl`, and its output buffer. */
  curlTimeoutS?: number;
  curlMaxBuffer?: number;
  /** Default deadline and poll interval of `eventually`. */
  eventuallyMs?: number;
  eventuallyIntervalMs?: number;
}

export interface CurlResult {
  status: number;
  headers: string;
  body: string;
}

/** A control plane, n1 and n2 joined, two node proxies and a waypoint; `start` in before, `stop` in after. */
export class WaypointMesh {
  readonly state: string;
  readonly work: string;
  private cpProc: ControlPlaneProcess | undefined;
  private n1Proc: NodeProcess | undefined;
  private n2Proc: NodeProcess | undefined;
  private wpProc: NodeProcess | undefined;

  constructor(private readonly o: WaypointMeshOptions) {
    this.state = mkdtempSync(join(tmpdir(), `${o.tmpPrefix}-`));
    this.work = mkdtempSync(join(tmpdir(), `${o.tmpPrefix}-work-`));
  }

  get cp(): ControlPlaneProcess {
    return must(this.cpProc, "control plane");
  }
  get n1(): NodeProcess {
    return must(this.n1Proc, "node proxy n1");
  }
  get n2(): NodeProcess {
    return must(this.n2Proc, "node proxy n2");
  }
  get wp(): NodeProcess {
    return must(this.wpProc, "waypoint");
  }

  admin(): string[] {
    return ["--control-plane", this.cp.adminUrl, "--state-dir", this.state];
  }

  /**
   * Writes mesh.yaml, starts the control plane, joins n1 and n2, runs `backends` (the file's own
   * servers), then starts the two node proxies and the waypoint.
   */
  async start(backends: () => Promise<void> | void = () => undefined): Promise<void> {
    mkdirSync(join(this.state, "config"), { recursive: true });
    writeFileSync(join(this.state, "config", "mesh.yaml"), this.o.yaml);
    const grpcPort = await freePort();
    this.cpProc = await startControlPlaneProcess(this.state, ["--grpc-addr", `127.0.0.1:${grpcPort}`]);
    await joinNodeWithCli(this.cpProc, "n1", join(this.work, "n1"));
    await joinNodeWithCli(this.cpProc, "n2", join(this.work, "n2"));
    await backends();
    const h = this.o.adminHosts;
    this.n1Proc = await startNodeProcess(this.cpProc, "n1", join(this.work, "n1"), h.n1);
    this.n2Proc = await startNodeProcess(this.cpProc, "n2", join(this.work, "n2"), h.n2);
    this.wpProc = await startWaypointProcess(
      this.cpProc,
      `${this.o.namespace}/waypoint`,
      join(this.work, "n1"),
      this.o.waypointIp,
      h.waypoint,
    );
  }

  /** Stops the processes, then runs `cleanup` (the file's own servers), then removes the temp dirs. */
  async stop(cleanup: () => Promise<void> | void = () => undefined): Promise<void> {
    try {
      await Promise.all([this.n1Proc?.stop(), this.n2Proc?.stop(), this.wpProc?.stop()]);
      await this.cpProc?.stop("SIGKILL");
      await cleanup();
    } finally {
      rmSync(this.state, { recursive: true, force: true });
      rmSync(this.work, { recursive: true, force: true });
    }
  }

  async apply(yaml: string, name: string): Promise<void> {
    await this.ambit("apply", yaml, name);
  }

  async remove(yaml: string, name: string): Promise<void> {
    await this.ambit("delete", yaml, name);
  }

  private async ambit(verb: "apply" | "delete", yaml: string, name: string): Promise<void> {
    const file = join(this.work, `${name}.yaml`);
    writeFileSync(file, yaml);
    const r = await runAmbit([verb, "-f", file, ...this.admin()]);
    assert.equal(r.code, 0, r.stderr);
  }

  /** curl through the client's node proxy (SOCKS5) with `args` as given; returns its stdout. */
  async curlRaw(args: readonly string[], o: { timeoutS?: number; maxBuffer?: number } = {}): Promise<string> {
    const { stdout } = await run(
      "curl",
      [
        "-sS",
        "--max-time",
        String(o.timeoutS ?? this.o.curlTimeoutS ?? 15),
        "--socks5",
        `${this.o.clientIp}:15001`,
        ...args,
      ],
      { maxBuffer: o.maxBuffer ?? this.o.curlMaxBuffer ?? 16 * 1024 * 1024, encoding: "utf8" },
    );
    return stdout;
  }

  /** curl through the client's node proxy; returns status, headers and body. */
  async curl(url: string, args: readonly string[] = []): Promise<CurlResult> {
    const stdout = await this.curlRaw(["-D", "-", "-o", "-", "-w", "\n%{http_code}", ...args, url]);
    const lines = stdout.trimEnd().split("\n");
    const status = Number(lines.pop());
    const text = lines.join("\n");
    const split = text.indexOf("\r\n\r\n");
    return {
      status,
      headers: split >= 0 ? text.slice(0, split) : text,
      body: split >= 0 ? text.slice(split + 4) : "",
    };
  }

  /** `curl`, asserting a 200 (the waypoint's log tail on failure), the body parsed as JSON. */
  async curlJson<T>(url: string, args: readonly string[] = []): Promise<T> {
    const r = await this.curl(url, args);
    assert.equal(
      r.status,
      200,
      `${url}: ${r.status} ${r.headers}\n${r.body}\n${this.wp.logs().slice(-3000)}`,
    );
    return JSON.parse(r.body) as T;
  }

  /** Until `probe` holds (config pushed to the waypoint), polling; the waypoint's log tail on timeout. */
  async eventually(probe: () => Promise<boolean>, what: string, ms?: number): Promise<void> {
    const end = Date.now() + (ms ?? this.o.eventuallyMs ?? 15_000);
    const interval = this.o.eventuallyIntervalMs ?? 100;
    for (;;) {
      if (await probe().catch(() => false)) return;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${this.wp.logs().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`the ${what} is not started`);
  return v;
}
