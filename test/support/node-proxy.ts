// Runs real `ambit node` processes in loopback mode for tests, and a SOCKS5 client that plays an
// application in a pod (loopback mode learns the original destination from SOCKS5).
import { spawn, type ChildProcess } from "node:child_process";
import * as net from "node:net";
import { join } from "node:path";
import type { ControlPlaneProcess } from "./control-plane.js";
import { repoRoot } from "./repo.js";

export interface NodeProcess {
  name: string;
  child: ChildProcess;
  /** 127.0.10.N: admin :15000, metrics :15020, readiness :15021. */
  host: string;
  logs(): string;
  /** Access-log lines (JSON objects with event "connection" or "refused"). */
  accessLog(): Record<string, unknown>[];
  metrics(): Promise<string>;
  admin<T>(path: string): Promise<T>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startNodeProcess(
  cp: ControlPlaneProcess | { grpcPort: number },
  name: string,
  credentialsDir: string,
  host: string,
  extraArgs: readonly string[] = [],
): Promise<NodeProcess> {
  return startProxyProcess(name, host, [
    "node",
    "--control-plane",
    `127.0.0.1:${cp.grpcPort}`,
    "--node-name",
    name,
    "--credentials",
    credentialsDir,
    ...extraArgs,
  ]);
}

/** A real `ambit waypoint` for Gateway `ns/name`, accepting HBONE on `address`:15008. */
export async function startWaypointProcess(
  cp: ControlPlaneProcess | { grpcPort: number },
  gateway: string,
  credentialsDir: string,
  address: string,
  host: string,
  extraArgs: readonly string[] = [],
): Promise<NodeProcess> {
  return startProxyProcess(`waypoint ${gateway}`, host, [
    "waypoint",
    "--control-plane",
    `127.0.0.1:${cp.grpcPort}`,
    "--gateway",
    gateway,
    "--credentials",
    credentialsDir,
    "--address",
    address,
    ...extraArgs,
  ]);
}

/** Spawn `ambit ARGS` with admin, metrics and readiness on `host` and wait until it is ready. */
async function startProxyProcess(name: string, host: string, args: readonly string[]): Promise<NodeProcess> {
  const child = spawn(
    process.execPath,
    [
      join(repoRoot(), "bin", "ambit.js"),
      ...args,
      "--admin-addr",
      `${host}:15000`,
      "--metrics-addr",
      `${host}:15020`,
      "--ready-addr",
      `${host}:15021`,
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, AMBIT_LOG_LEVEL: process.env.AMBIT_LOG_LEVEL ?? "info" },
    },
  );
  let stderr = "";
  let stdout = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  const proc: NodeProcess = {
    name,
    child,
    host,
    logs: () => `${stdout}\n${stderr}`,
    accessLog: () =>
      stderr
        .split("\n")
        .filter((l) => l.includes('"event":'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    metrics: async () => (await fetch(`http://${host}:15020/metrics`)).text(),
    admin: async <T>(path: string) => (await (await fetch(`http://${host}:15000${path}`)).json()) as T,
    stop: (signal = "SIGTERM") =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        child.once("exit", (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        child.kill(signal);
      }),
  };
  await waitReady(proc);
  return proc;
}

/** Poll the readiness endpoint until 200 (config acknowledged, local workloads enrolled). */
export async function waitReady(node: NodeProcess, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  let last = "";
  while (Date.now() < end) {
    if (node.child.exitCode !== null) throw new Error(`node ${node.name} exited:\n${node.logs()}`);
    try {
      const r = await fetch(`http://${node.host}:15021/healthz/ready`);
      last = await r.text();
      if (r.status === 200) return;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`node ${node.name} not ready in ${ms} ms: ${last}\n${node.logs()}`);
}

export type SocksOutcome = { ok: true; socket: net.Socket } | { ok: false; reply: number; error?: string };

/** Connect through a pod's listener with SOCKS5 CONNECT to `dst`, from `localAddress`. */
export function socksConnect(
  proxy: { host: string; port: number },
  dst: { ip: string; port: number },
  localAddress?: string,
  timeoutMs = 10_000,
): Promise<SocksOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({
      host: proxy.host,
      port: proxy.port,
      ...(localAddress ? { localAddress } : {}),
    });
    let buf = Buffer.alloc(0);
    let stage = 0;
    const timer = setTimeout(() => finish({ ok: false, reply: -1, error: "timeout" }), timeoutMs);
    const finish = (r: SocksOutcome): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        stage = 1;
        if (!net.isIPv4(dst.ip)) return finish({ ok: false, reply: -1, error: "IPv4 destinations only" });
        const addr = Buffer.from(dst.ip.split(".").map(Number));
        const port = Buffer.alloc(2);
        port.writeUInt16BE(dst.port);
        socket.write(Buffer.concat([Buffer.from([5, 1, 0, 1]), addr, port]));
      }
      if (stage === 1 && buf.length >= 10) {
        const reply = buf[1] ?? -1;
        const rest = buf.subarray(10);
        if (reply !== 0) return finish({ ok: false, reply });
        if (rest.length > 0) socket.unshift(rest);
        finish({ ok: true, socket });
      }
    };
    socket.on("data", onData);
    socket.on("error", (err) => finish({ ok: false, reply: -1, error: err.message }));
    socket.on("close", () => finish({ ok: false, reply: -1, error: "closed" }));
    socket.on("connect", () => socket.write(Buffer.from([5, 1, 0])));
  });
}

/** Send `text` and read until `expect` bytes came back (or the socket closed). */
export function exchange(socket: net.Socket, text: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const timer = setTimeout(
      () => reject(new Error(`echo timed out; got ${JSON.stringify(got)}`)),
      timeoutMs,
    );
    const onData = (d: Buffer): void => {
      got += d.toString("utf8");
      if (got.length >= text.length) {
        clearTimeout(timer);
        socket.off("data", onData);
        resolve(got);
      }
    };
    socket.on("data", onData);
    socket.write(text);
  });
}

/**
 * A local TCP port that takes each connection through a pod's SOCKS5 listener to `dst`: lets
 * clients without SOCKS support (h2load, gRPC) play the pod's application in loopback mode,
 * where capture would do this in a real pod.
 */
export async function socksForwarder(
  proxy: { host: string; port: number },
  dst: { ip: string; port: number },
  localAddress?: string,
): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.pause();
    client.on("error", () => undefined);
    client.on("close", () => sockets.delete(client));
    void socksConnect(proxy, dst, localAddress).then((r) => {
      if (!r.ok || client.destroyed) {
        if (r.ok) r.socket.destroy();
        return void client.destroy();
      }
      sockets.add(r.socket);
      r.socket.on("error", () => client.destroy());
      r.socket.on("close", () => sockets.delete(r.socket));
      client.on("close", () => r.socket.destroy());
      client.pipe(r.socket).pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}
