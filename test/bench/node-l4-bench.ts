// First node-proxy benchmark: request/response over two real node proxies (client pod → node
// proxy → HBONE mTLS → node proxy → server pod) against the same exchange direct on loopback.
// Closed loop: 1 connection (latency) and 16 connections (throughput), 1 KiB responses; and new
// connections per second (one exchange per connection). The Benchmarks issue makes this rigorous
// (open-loop rates, a C peer, CPU and memory); this gives the first ratios.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { joinNodeWithCli, startControlPlaneProcess } from "../support/control-plane.js";
import { socksConnect, startNodeProcess } from "../support/node-proxy.js";
import { repoRoot } from "../support/repo.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RESPONSE = Buffer.alloc(1024, 0x61);
const REQUEST = Buffer.alloc(100, 0x62);

const MESH = `
apiVersion: v1
kind: Namespace
metadata: { name: bench, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: bench, labels: { app: client } }
spec: { nodeName: n1, serviceAccountName: client }
status: { podIP: 127.0.1.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: server, namespace: bench, labels: { app: server } }
spec: { nodeName: n2, serviceAccountName: server }
status: { podIP: 127.0.2.1 }
---
apiVersion: v1
kind: Service
metadata: { name: server, namespace: bench }
spec: { selector: { app: server }, clusterIP: 10.96.0.77, ports: [{ name: tcp, port: 9100 }] }
`;

type Dial = () => Promise<net.Socket>;

/** One request/response exchange on an open socket; resolves with the round-trip time in µs. */
function exchange(s: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let got = 0;
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got >= RESPONSE.length) {
        s.off("data", onData);
        s.off("error", reject);
        resolve(Number(process.hrtime.bigint() - t0) / 1000);
      }
    };
    s.on("data", onData);
    s.once("error", reject);
    s.write(REQUEST);
  });
}

async function closedLoop(dial: Dial, conns: number): Promise<{ rps: number; p50: number; p99: number }> {
  const sockets = await Promise.all(Array.from({ length: conns }, dial));
  const lat: number[] = [];
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(
    sockets.map(async (s) => {
      while (Date.now() < end) lat.push(await exchange(s));
    }),
  );
  for (const s of sockets) s.destroy();
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { rps: lat.length / SECONDS, p50: q(0.5), p99: q(0.99) };
}

async function newConnections(dial: Dial, conns: number): Promise<number> {
  let n = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (Date.now() < end) {
        const s = await dial();
        await exchange(s);
        s.destroy();
        n++;
      }
    }),
  );
  return n / SECONDS;
}

async function main(): Promise<void> {
  const state = mkdtempSync(join(tmpdir(), "ambit-bench-l4-"));
  const work = mkdtempSync(join(tmpdir(), "ambit-bench-l4w-"));
  mkdirSync(join(state, "config"));
  writeFileSync(join(state, "config", "mesh.yaml"), MESH);
  const server = net.createServer({ noDelay: true }, (s) => {
    let pending = 0;
    s.on("data", (d) => {
      pending += d.length;
      while (pending >= REQUEST.length) {
        pending -= REQUEST.length;
        s.write(RESPONSE);
      }
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(9100, "127.0.2.1", r));
  const cp = await startControlPlaneProcess(state);
  const nodes = [];
  try {
    await joinNodeWithCli(cp, "n1", join(work, "n1"));
    await joinNodeWithCli(cp, "n2", join(work, "n2"));
    const quiet = { ...process.env, AMBIT_LOG_LEVEL: "warn" };
    process.env.AMBIT_LOG_LEVEL = quiet.AMBIT_LOG_LEVEL;
    nodes.push(await startNodeProcess(cp, "n1", join(work, "n1"), "127.0.10.1"));
    nodes.push(await startNodeProcess(cp, "n2", join(work, "n2"), "127.0.10.2"));
    const direct: Dial = () =>
      new Promise((resolve, reject) => {
        const s = net.connect({ host: "127.0.2.1", port: 9100, noDelay: true }, () => resolve(s));
        s.once("error", reject);
      });
    const mesh: Dial = async () => {
      const r = await socksConnect({ host: "127.0.1.1", port: 15001 }, { ip: "10.96.0.77", port: 9100 });
      if (!r.ok) throw new Error(`mesh connect failed: ${r.reply} ${r.error ?? ""}`);
      r.socket.setNoDelay(true);
      return r.socket;
    };
    // Warm up both paths (certificates, pooled tunnel, JIT).
    await closedLoop(direct, 4);
    await closedLoop(mesh, 4);
    const rows: Record<string, unknown>[] = [];
    for (const [name, conns] of [
      ["1 connection", 1],
      ["16 connections", 16],
    ] as const) {
      const d = await closedLoop(direct, conns);
      const m = await closedLoop(mesh, conns);
      rows.push({
        scenario: `closed loop, ${name}`,
        direct_rps: Math.round(d.rps),
        mesh_rps: Math.round(m.rps),
        ratio: +(m.rps / d.rps).toFixed(3),
        direct_p50_us: Math.round(d.p50),
        mesh_p50_us: Math.round(m.p50),
        added_p50_us: Math.round(m.p50 - d.p50),
        added_p99_us: Math.round(m.p99 - d.p99),
      });
    }
    const dc = await newConnections(direct, 8);
    const mc = await newConnections(mesh, 8);
    rows.push({
      scenario: "new connections/s, 8 in parallel",
      direct_rps: Math.round(dc),
      mesh_rps: Math.round(mc),
      ratio: +(mc / dc).toFixed(3),
    });
    const out = { date: new Date().toISOString(), seconds: SECONDS, node: process.version, cpus: 2, rows };
    mkdirSync(join(repoRoot(), "bench", "results"), { recursive: true });
    writeFileSync(join(repoRoot(), "bench", "results", "node-l4.json"), `${JSON.stringify(out, null, 2)}\n`);
    console.table(rows);
  } finally {
    for (const n of nodes) await n.stop();
    await cp.stop();
    server.close();
    rmSync(state, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
