// Control-plane push benchmark: a real `ambit control-plane` process loaded with a generated mesh
// (namespaces, Pods, Services, AuthorizationPolicies), 50 joined nodes each holding a Delta xDS
// stream, then initial sync time, bytes pushed, convergence after `ambit apply` and RSS per client.
// Run: npx tsc -p . && node dist/test/bench/xds-push-bench.js \
//        [--workloads 10000 --services 1000 --policies 500 --clients 50]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adsServiceClient } from "../../src/api/protos.js";
import { DeltaXdsClient } from "../../src/api/xds-client.js";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  decodeAny,
  REVOCATION_LIST_TYPE_URL,
} from "../../src/api/xds-types.js";
import { ownFileName } from "../../src/controlplane/config-store.js";
import { silentLogger } from "../../src/core/log.js";
import { readNodeCredentials, type NodeCredentials } from "../../src/identity/ca-client.js";
import { joinNode } from "../../src/node/join.js";
import { startControlPlaneProcess, type ControlPlaneProcess } from "../support/control-plane.js";
import { repoRoot, runAmbit } from "../support/repo.js";

const TYPES = [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, REVOCATION_LIST_TYPE_URL];
const ANCHOR = { istiodP90ConvergenceMs: 1500, istiodBytesPerProxy: 1.3e6 };

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

const WORKLOADS = arg("workloads", 10_000);
const SERVICES = arg("services", 1_000);
const POLICIES = arg("policies", 500);
const CLIENTS = arg("clients", 50);
const REPEATS = arg("repeats", 5);
const BATCH = Math.min(arg("batch", 100), POLICIES);
const NAMESPACES = Math.max(1, Math.min(20, SERVICES));
const JOIN_CONCURRENCY = 8;
const SYNC_TIMEOUT_MS = 300_000;
const CONVERGE_TIMEOUT_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every `everyMs` until it holds; throws after `ms`. */
async function waitFor(what: string, cond: () => boolean, ms: number, everyMs = 5): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function withTimeout<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run `fn` over `items` with at most `limit` in flight. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function adminGet<T>(adminUrl: string, state: string, path: string): Promise<T> {
  const token = readFileSync(join(state, "admin-token"), "utf8").trim();
  const res = await fetch(`${adminUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** The control plane's live memory (heap + external) after a full GC, from its admin API. */
async function liveBytes(adminUrl: string, state: string): Promise<number> {
  const m = await adminGet<{ heapUsed: number; external: number; collected: boolean }>(
    adminUrl,
    state,
    "/debug/memory?gc=1",
  );
  if (!m.collected) throw new Error("control plane did not collect garbage (needs --expose-gc)");
  return m.heapUsed + m.external;
}

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

function stats(xs: readonly number[]): { median: number; p90: number; max: number; min: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  return { median: at(0.5), p90: at(0.9), max: s[s.length - 1] ?? NaN, min: s[0] ?? NaN };
}

// ---------------------------------------------------------------------------------------------
// Generated config

const ns = (i: number): string => `ns-${i % NAMESPACES}`;
const svcNs = (svc: number): string => ns(svc);
const node = (i: number): string => `n${i % CLIENTS}`;

function namespacesYaml(): string {
  const docs: string[] = [];
  for (let i = 0; i < NAMESPACES; i++) {
    docs.push(
      `apiVersion: v1\nkind: Namespace\nmetadata: { name: ns-${i}, labels: { istio.io/dataplane-mode: ambient } }\n`,
    );
  }
  return docs.join("---\n");
}

function podsYaml(): string {
  const docs: string[] = [];
  for (let i = 0; i < WORKLOADS; i++) {
    const svc = i % SERVICES;
    docs.push(
      `apiVersion: v1\nkind: Pod\nmetadata: { name: pod-${i}, namespace: ${svcNs(svc)}, labels: { app: svc-${svc} } }\n` +
        `spec:\n  nodeName: ${node(i)}\n  serviceAccountName: sa-${svc % 100}\n` +
        `  containers: [{ name: app, image: app:1, ports: [{ name: http, containerPort: 8080 }] }]\n`,
    );
  }
  return docs.join("---\n");
}

function clusterIp(svc: number): string {
  const n = svc + 10; // 10.96.0.10 upward, within 10.96.0.0/16
  return `10.96.${(n >> 8) & 0xff}.${n & 0xff}`;
}

function servicesYaml(): string {
  const docs: string[] = [];
  for (let s = 0; s < SERVICES; s++) {
    docs.push(
      `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${s}, namespace: ${svcNs(s)} }\n` +
        `spec:\n  selector: { app: svc-${s} }\n  clusterIP: ${clusterIp(s)}\n` +
        `  ports: [{ name: http, port: 80, targetPort: 8080 }, { name: grpc, port: 9090, targetPort: 9090 }]\n`,
    );
  }
  return docs.join("---\n");
}

/** One policy; `rev` changes its content (a principal and a port) so that its pushed version changes. */
function policyYaml(p: number, rev = 0): string {
  const svc = p % SERVICES;
  const namespace = svcNs(svc);
  const selector = p % 3 === 0 ? "" : `  selector: { matchLabels: { app: svc-${svc} } }\n`;
  const action = p % 7 === 0 ? "DENY" : "ALLOW";
  const from =
    p % 2 === 0
      ? `principals: ["cluster.local/ns/${ns(p + 1)}/sa/sa-${(p + rev) % 100}", "cluster.local/ns/${ns(p + 2)}/sa/*"]`
      : `namespaces: ["${ns(p + 1)}", "${ns(p + 3)}"]`;
  return (
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ap-${p}, namespace: ${namespace} }\n` +
    `spec:\n${selector}  action: ${action}\n  rules:\n` +
    `    - from: [{ source: { ${from} } }]\n` +
    `      to: [{ operation: { ports: ["${8080 + (rev % 1000)}", "9090"] } }]\n`
  );
}

function policiesYaml(which: readonly number[], rev: number): string {
  return which.map((p) => policyYaml(p, rev)).join("---\n");
}

// ---------------------------------------------------------------------------------------------

interface Client {
  name: string;
  xds: DeltaXdsClient;
  bytes: number;
  invalid: number;
}

async function main(): Promise<void> {
  const state = mkdtempSync(join(tmpdir(), "ambit-xds-bench-"));
  const work = mkdtempSync(join(tmpdir(), "ambit-xds-bench-work-"));
  let cp: ControlPlaneProcess | undefined;
  const clients: Client[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of clients) c.xds.close();
    await cp?.stop().catch(() => undefined);
    rmSync(state, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    console.log(
      `sizes: workloads=${WORKLOADS} services=${SERVICES} policies=${POLICIES} clients=${CLIENTS} namespaces=${NAMESPACES}`,
    );
    const cfg = join(state, "config");
    mkdirSync(cfg, { recursive: true });
    writeFileSync(join(cfg, "00-namespaces.yaml"), namespacesYaml());
    writeFileSync(join(cfg, "10-pods.yaml"), podsYaml());
    writeFileSync(join(cfg, "20-services.yaml"), servicesYaml());
    // Policies are changed later by `ambit apply`, which edits only a resource's own file: give
    // each policy the file name the config store would have chosen for it.
    for (let p = 0; p < POLICIES; p++) {
      const name = ownFileName({
        kind: "AuthorizationPolicy",
        metadata: { name: `ap-${p}`, namespace: svcNs(p % SERVICES) },
      });
      writeFileSync(join(cfg, name), policyYaml(p, 0));
    }

    let t = performance.now();
    // --expose-gc: the live-memory figures are taken after a full collection (GET /debug/memory?gc=1).
    process.env.AMBIT_CP_NODE_FLAGS = `${process.env.AMBIT_CP_NODE_FLAGS ?? ""} --expose-gc`;
    cp = await startControlPlaneProcess(state);
    const startMs = performance.now() - t;
    const pid = cp.child.pid as number;
    const rssStartKb = rssKb(pid);
    console.log(
      `control plane up in ${startMs.toFixed(0)} ms (pid ${pid}, RSS ${(rssStartKb / 1024).toFixed(1)} MB)`,
    );

    // Join the nodes: token through the real CLI, join in-process (what `ambit node join` runs).
    t = performance.now();
    const admin = ["--control-plane", cp.adminUrl, "--state-dir", state];
    const names = Array.from({ length: CLIENTS }, (_, i) => `n${i}`);
    const creds = await pool(names, JOIN_CONCURRENCY, async (name): Promise<NodeCredentials> => {
      const created = await runAmbit(["join-token", "create", "--node", name, ...admin]);
      if (created.code !== 0) throw new Error(`join-token create ${name} failed: ${created.stderr}`);
      const out = join(work, name);
      await withTimeout(
        `join ${name}`,
        joinNode({
          controlPlane: { host: "127.0.0.1", port: (cp as ControlPlaneProcess).grpcPort },
          token: created.stdout.trim(),
          outDir: out,
        }),
        30_000,
      );
      return readNodeCredentials(out);
    });
    const joinMs = performance.now() - t;
    console.log(`${CLIENTS} nodes joined in ${joinMs.toFixed(0)} ms`);

    await sleep(500);
    const rssBeforeKb = rssKb(pid);
    const liveBefore = await liveBytes(cp.adminUrl, state);

    // Connect every client at once and wait for the full initial state.
    t = performance.now();
    for (const [i, name] of names.entries()) {
      const c: Client = { name, bytes: 0, invalid: 0, xds: undefined as unknown as DeltaXdsClient };
      const nodeCreds = creds[i] as NodeCredentials;
      c.xds = new DeltaXdsClient({
        address: `127.0.0.1:${cp.grpcPort}`,
        credentials: () => nodeCreds,
        service: adsServiceClient(),
        typeUrls: TYPES,
        validate: (typeUrl, _name, r) => {
          c.bytes += r.resource.value.length;
          try {
            decodeAny(r.resource);
            if (r.resource.typeUrl !== typeUrl)
              throw new Error(`type ${r.resource.typeUrl} under ${typeUrl}`);
            return undefined;
          } catch (err) {
            c.invalid++;
            return (err as Error).message;
          }
        },
        log: silentLogger(),
        initialBackoffMs: 100,
        maxBackoffMs: 1000,
      });
      clients.push(c);
      c.xds.start();
    }
    // Every Pod has a node, so every Pod and Service is an Address; each policy is one Authorization.
    const wantAddresses = WORKLOADS + SERVICES;
    const synced = (c: Client): boolean =>
      c.xds.resources(ADDRESS_TYPE_URL).size >= wantAddresses &&
      c.xds.resources(AUTHORIZATION_TYPE_URL).size >= POLICIES &&
      c.xds.resources(REVOCATION_LIST_TYPE_URL).size >= 1;
    let firstSyncMs: number | undefined;
    await waitFor(
      "all clients to hold the initial state",
      () => {
        const n = clients.filter(synced).length;
        if (n > 0 && firstSyncMs === undefined) firstSyncMs = performance.now() - t;
        return n === clients.length;
      },
      SYNC_TIMEOUT_MS,
    ).catch((err: Error) => {
      const c = clients[0];
      throw new Error(
        `${err.message}; first client holds ${c?.xds.resources(ADDRESS_TYPE_URL).size} addresses, ` +
          `${c?.xds.resources(AUTHORIZATION_TYPE_URL).size} authorizations`,
      );
    });
    const initialSyncMs = performance.now() - t;
    const invalid = clients.reduce((a, c) => a + c.invalid, 0);
    if (invalid > 0) throw new Error(`${invalid} resources failed decodeAny`);
    const bytesPerClient = clients.map((c) => c.bytes);
    const totalBytes = bytesPerClient.reduce((a, b) => a + b, 0);
    const heldBytes = [...(clients[0]?.xds.resources(ADDRESS_TYPE_URL).values() ?? [])]
      .concat([...(clients[0]?.xds.resources(AUTHORIZATION_TYPE_URL).values() ?? [])])
      .reduce((a, r) => a + r.resource.value.length, 0);
    console.log(
      `initial sync: ${initialSyncMs.toFixed(0)} ms (first client ${firstSyncMs?.toFixed(0)} ms), ` +
        `${(totalBytes / 1e6).toFixed(1)} MB received in total`,
    );
    // Synced as the control plane sees it: every client has acknowledged everything.
    const cpUrl = cp.adminUrl;
    let ackedSync = false;
    while (!ackedSync && performance.now() - t < SYNC_TIMEOUT_MS) {
      const st = await adminGet<{ clients: { inSync: boolean }[] }>(cpUrl, state, "/v1/proxy-status");
      ackedSync = st.clients.length === CLIENTS && st.clients.every((c) => c.inSync);
      if (!ackedSync) await sleep(50);
    }
    if (!ackedSync) throw new Error("the control plane never saw every client in sync");
    const ackedSyncMs = performance.now() - t;
    console.log(`all ${CLIENTS} clients acknowledged the initial state after ${ackedSyncMs.toFixed(0)} ms`);
    await sleep(1000);
    const rssAfterKb = rssKb(pid);
    const liveAfter = await liveBytes(cp.adminUrl, state);

    // Convergence after `ambit apply`: one policy, then a batch, each compared by pushed version.
    const authzName = (p: number): string => `${svcNs(p % SERVICES)}/ap-${p}`;
    let rev = 0;
    const converge = async (
      which: readonly number[],
    ): Promise<{ afterApplyMs: number; sinceApplyStartMs: number; applyCliMs: number }> => {
      rev++;
      const names_ = which.map(authzName);
      const old = clients.map((c) =>
        names_.map((n) => c.xds.resources(AUTHORIZATION_TYPE_URL).get(n)?.version),
      );
      const file = join(work, `change-${rev}.yaml`);
      writeFileSync(file, policiesYaml(which, rev));
      const t0 = performance.now();
      const applied = await runAmbit(["apply", "-f", file, ...admin]);
      const t1 = performance.now();
      if (applied.code !== 0) throw new Error(`ambit apply failed: ${applied.stderr}`);
      await waitFor(
        `all clients to hold change ${rev}`,
        () =>
          clients.every((c, ci) =>
            names_.every((n, ni) => {
              const v = c.xds.resources(AUTHORIZATION_TYPE_URL).get(n)?.version;
              return v !== undefined && v !== old[ci]?.[ni];
            }),
          ),
        CONVERGE_TIMEOUT_MS,
      );
      const t2 = performance.now();
      return { afterApplyMs: t2 - t1, sinceApplyStartMs: t2 - t0, applyCliMs: t1 - t0 };
    };
    const single: Awaited<ReturnType<typeof converge>>[] = [];
    const batch: Awaited<ReturnType<typeof converge>>[] = [];
    let convergenceError: string | undefined;
    try {
      for (let i = 0; i < REPEATS; i++) {
        single.push(await converge([(i * 37) % POLICIES]));
        await sleep(300);
      }
      for (let i = 0; i < REPEATS; i++) {
        const start = (i * BATCH) % POLICIES;
        batch.push(await converge(Array.from({ length: BATCH }, (_, k) => (start + k) % POLICIES)));
        await sleep(300);
      }
    } catch (err) {
      // Keep the sync and memory figures: report the failure beside them.
      convergenceError = (err as Error).message.split("\n")[0];
      console.error(`convergence measurement failed: ${convergenceError}`);
    }
    const singleS = stats(single.map((r) => r.afterApplyMs));
    const batchS = stats(batch.map((r) => r.afterApplyMs));
    const rssEndKb = rssKb(pid);
    const liveEnd = await liveBytes(cp.adminUrl, state);
    const perClientKb = (rssAfterKb - rssBeforeKb) / CLIENTS;

    const mb = (kb: number): string => (kb / 1024).toFixed(1);
    const ms = (x: number): string => x.toFixed(0);
    const rows: [string, string, string][] = [
      ["control plane start (config load)", `${ms(startMs)} ms`, ""],
      [`join ${CLIENTS} nodes (CLI token + in-process join)`, `${ms(joinMs)} ms`, ""],
      [`initial sync, all ${CLIENTS} clients`, `${ms(initialSyncMs)} ms`, ""],
      ["initial sync, first client", `${ms(firstSyncMs ?? NaN)} ms`, ""],
      [`initial sync, all ${CLIENTS} acknowledged (proxy-status in sync)`, `${ms(ackedSyncMs)} ms`, ""],
      [
        "bytes received per client (initial)",
        `${(totalBytes / CLIENTS / 1e6).toFixed(2)} MB`,
        `${(heldBytes / 1e6).toFixed(2)} MB held`,
      ],
      ["bytes received, all clients", `${(totalBytes / 1e6).toFixed(1)} MB`, ""],
      [
        `single-policy change → all clients: median / max (n=${REPEATS})`,
        `${ms(singleS.median)} / ${ms(singleS.max)} ms`,
        `istiod healthy p90 ~${ANCHOR.istiodP90ConvergenceMs} ms`,
      ],
      [
        `${BATCH}-policy change → all clients: median / max (n=${REPEATS})`,
        `${ms(batchS.median)} / ${ms(batchS.max)} ms`,
        `istiod healthy p90 ~${ANCHOR.istiodP90ConvergenceMs} ms`,
      ],
      [
        "single-policy change, from `ambit apply` start: median / max",
        `${ms(stats(single.map((r) => r.sinceApplyStartMs)).median)} / ${ms(stats(single.map((r) => r.sinceApplyStartMs)).max)} ms`,
        "",
      ],
      [
        `${BATCH}-policy change, from \`ambit apply\` start: median / max`,
        `${ms(stats(batch.map((r) => r.sinceApplyStartMs)).median)} / ${ms(stats(batch.map((r) => r.sinceApplyStartMs)).max)} ms`,
        "",
      ],
      [
        "`ambit apply` CLI round trip (single, median)",
        `${ms(stats(single.map((r) => r.applyCliMs)).median)} ms`,
        "",
      ],
      ["control-plane RSS before clients", `${mb(rssBeforeKb)} MB`, ""],
      [`control-plane RSS with ${CLIENTS} synced clients`, `${mb(rssAfterKb)} MB`, ""],
      ["control-plane RSS at end", `${mb(rssEndKb)} MB`, ""],
      ["RSS per connected client", `${(perClientKb / 1024).toFixed(2)} MB`, "istiod ~1.3 MB per proxy"],
      [
        "control-plane live memory (heap + external after GC): before clients",
        `${mb(liveBefore / 1024)} MB`,
        "",
      ],
      [`control-plane live memory with ${CLIENTS} synced clients`, `${mb(liveAfter / 1024)} MB`, ""],
      ["control-plane live memory at end", `${mb(liveEnd / 1024)} MB`, ""],
      [
        "live memory per connected client",
        `${((liveAfter - liveBefore) / CLIENTS / 1e6).toFixed(2)} MB`,
        "istiod ~1.3 MB per proxy",
      ],
    ];
    if (convergenceError) rows.push(["convergence error", convergenceError, ""]);
    console.log("\n| measure | Ambit | anchor |\n|---|---|---|");
    for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);

    const results = {
      date: new Date().toISOString(),
      node: process.version,
      sizes: {
        workloads: WORKLOADS,
        services: SERVICES,
        policies: POLICIES,
        clients: CLIENTS,
        namespaces: NAMESPACES,
        batch: BATCH,
        repeats: REPEATS,
      },
      controlPlaneStartMs: startMs,
      joinMs,
      initialSync: {
        allClientsMs: initialSyncMs,
        firstClientMs: firstSyncMs,
        allAcknowledgedMs: ackedSyncMs,
        resourcesPerClient: {
          addresses: clients[0]?.xds.resources(ADDRESS_TYPE_URL).size,
          authorizations: clients[0]?.xds.resources(AUTHORIZATION_TYPE_URL).size,
        },
        bytesTotal: totalBytes,
        bytesPerClient: totalBytes / CLIENTS,
        bytesHeldPerClient: heldBytes,
      },
      convergence: {
        note: "from `ambit apply` returning to every client holding the new version (5 ms polling)",
        ...(convergenceError ? { error: convergenceError } : {}),
        single: { ...singleS, samplesMs: single.map((r) => r.afterApplyMs), runs: single },
        batch: { size: BATCH, ...batchS, samplesMs: batch.map((r) => r.afterApplyMs), runs: batch },
      },
      memory: {
        rssStartKb,
        rssBeforeClientsKb: rssBeforeKb,
        rssAfterSyncKb: rssAfterKb,
        rssEndKb,
        perClientKb,
        liveBytes: { beforeClients: liveBefore, afterSync: liveAfter, end: liveEnd },
        livePerClientBytes: (liveAfter - liveBefore) / CLIENTS,
      },
      anchor: ANCHOR,
    };
    const outDir = join(repoRoot(), "bench", "results");
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, "xds-push.json"), JSON.stringify(results, null, 2) + "\n");
    console.log(`\nwrote ${join(outDir, "xds-push.json")}`);
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
