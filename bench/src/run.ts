// `npm run bench [-- --full] [--topology netns|loopback] [--reps N] [--only ID,ID]
// [--systems NAME,NAME] [--before DIR] [--seconds N] [--cpu-prof DIR] [--out DIR] [--readme]`: starts the
// systems under test (netns-topology.ts as root, else topology.ts's loopback one), runs every load of the suite on every system — warmed up, repeated, interleaved
// (each repetition rotates which system goes first) — measures the proxies' CPU and memory from
// /proc around each run, and writes bench/results/latest.json and latest.md (report.ts).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import type { LoadResult, LoadSpec } from "./loadgen.js";
import { cpuSeconds, ioSyscalls, killAll, run, rssKiB, start, stop, stopAll } from "./procs.js";
import { renderMarkdown, summarize, type Sample } from "./report.js";
import { rotation } from "./stats.js";
import { suite, type LoadDef } from "./suite.js";
import { isRoot, netnsTopology } from "./netns-topology.js";
import { BENCH_ROOT, REPO_ROOT, loopbackTopology, type System, type Topology } from "./topology.js";

const LOADGEN = join(BENCH_ROOT, "dist", "src", "loadgen.js");
const say = (line: string): void => console.log(`bench: ${line}`);

interface Args {
  full: boolean;
  /** netns: the lab (root; the default as root); loopback: SOCKS5 on 127.0.0.0/8 (the default otherwise). */
  topology: "netns" | "loopback";
  reps?: number;
  only?: string[];
  /** Run only these systems (direct is always kept: added latency is measured against it). */
  systems?: string[];
  /** Another built Ambit checkout: adds the `ambit-l4-before` system (A/B in one run). */
  before?: string;
  /** Override every timed load's duration (seconds), e.g. longer runs while profiling. */
  seconds?: number;
  /** Write V8 CPU profiles of every Ambit proxy process into this directory. */
  cpuProf?: string;
  readme: boolean;
  /** Where latest.json and latest.md go (default bench/results). */
  out?: string;
}

function args(): Args {
  const a = process.argv.slice(2);
  const val = (name: string): string | undefined => {
    const i = a.indexOf(name);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const reps = val("--reps");
  const only = val("--only");
  const systems = val("--systems");
  const before = val("--before");
  const cpuProf = val("--cpu-prof");
  const seconds = val("--seconds");
  const out = val("--out");
  const topology = val("--topology") ?? (isRoot() ? "netns" : "loopback");
  if (topology !== "netns" && topology !== "loopback")
    throw new Error(`--topology: expected netns or loopback, got "${topology}"`);
  if (topology === "netns")
    for (const flag of ["--before", "--cpu-prof"])
      if (a.includes(flag))
        throw new Error(`${flag} runs its proxies from the bench itself: add --topology loopback`);
  return {
    full: a.includes("--full"),
    topology,
    ...(reps ? { reps: Number(reps) } : {}),
    ...(only ? { only: only.split(",") } : {}),
    ...(systems ? { systems: ["direct", ...systems.split(",").filter((x) => x !== "direct")] } : {}),
    ...(before ? { before } : {}),
    ...(cpuProf ? { cpuProf } : {}),
    ...(seconds ? { seconds: Number(seconds) } : {}),
    readme: a.includes("--readme"),
    ...(out ? { out } : {}),
  };
}

async function loadgen(sys: System, spec: LoadSpec, timeoutMs: number): Promise<LoadResult> {
  const out = await run([...(sys.exec ?? []), process.execPath, LOADGEN, JSON.stringify(spec)], timeoutMs);
  return JSON.parse(out.trim().split("\n").pop() ?? "{}") as LoadResult;
}

function httpSpec(sys: System, def: LoadDef): Omit<LoadSpec, "mode"> {
  return {
    target: sys.http,
    ...(sys.socks ? { socks: sys.socks } : {}),
    connections: def.connections ?? 1,
    seconds: def.seconds,
  };
}

interface Snapshot {
  cpu: Record<string, number>;
  rss: Record<string, number>;
  syscalls: Record<string, number>;
}

function snapshot(sys: System): Snapshot {
  const cpu: Record<string, number> = {};
  const rss: Record<string, number> = {};
  const syscalls: Record<string, number> = {};
  for (const p of sys.proxies) {
    cpu[p.role] = cpuSeconds(p.pid);
    rss[p.role] = rssKiB(p.pid);
    syscalls[p.role] = ioSyscalls(p.pid);
  }
  return { cpu, rss, syscalls };
}

async function measure(sys: System, def: LoadDef, rep: number): Promise<Sample> {
  const before = snapshot(sys);
  const metrics: Record<string, number> = {};
  let work: number; // requests (or GB for iperf) the CPU is divided by, in thousands (or GB)
  if (def.kind === "open" || def.kind === "closed" || def.kind === "connrate") {
    const spec: LoadSpec = {
      mode: def.kind,
      ...httpSpec(sys, def),
      ...(def.rate !== undefined ? { rate: def.rate } : {}),
    };
    const r = await loadgen(sys, spec, (def.seconds + 30) * 1000 * 2);
    metrics.perSecond = r.perSecond;
    metrics.completed = r.completed;
    metrics.errors = r.errors;
    metrics.unfinished = r.unfinished;
    metrics.p50 = r.latencyUs.p50;
    metrics.p90 = r.latencyUs.p90;
    metrics.p99 = r.latencyUs.p99;
    metrics.p999 = r.latencyUs.p999;
    metrics.max = r.latencyUs.max;
    if (r.serviceUs) {
      metrics.serviceP50 = r.serviceUs.p50;
      metrics.serviceP99 = r.serviceUs.p99;
    }
    work = r.completed / 1000;
  } else if (def.kind === "iperf") {
    const out = await run(
      [
        ...(sys.exec ?? []),
        ...sys.iperfPrefix,
        "iperf3",
        "-c",
        sys.iperf.host,
        "-p",
        String(sys.iperf.port),
        "-t",
        String(def.seconds),
        "-O",
        "1",
        "-P",
        String(def.streams ?? 1),
        "-J",
      ],
      (def.seconds + 30) * 1000,
    );
    const j = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number; bytes?: number } } };
    const bps = j.end?.sum_received?.bits_per_second ?? Number.NaN;
    metrics.gbps = bps / 1e9;
    work = (j.end?.sum_received?.bytes ?? Number.NaN) / 1e9;
  } else {
    const spec: LoadSpec = { mode: "idle", ...httpSpec(sys, def), holdSeconds: def.seconds + 60 };
    const g = await start(
      [...(sys.exec ?? []), process.execPath, LOADGEN, JSON.stringify(spec)],
      /^\{.*\}$/m,
      {
        timeoutMs: (def.seconds + 30) * 1000,
      },
    );
    const r = JSON.parse(g.match?.[0] ?? "{}") as LoadResult;
    await new Promise((res) => setTimeout(res, 1_000));
    const held = snapshot(sys);
    metrics.held = r.held ?? 0;
    metrics.errors = r.errors;
    if (r.errorKinds)
      say(`${def.id} ${sys.name}: ${r.errors} connections failed: ${JSON.stringify(r.errorKinds)}`);
    metrics.openSeconds = r.seconds;
    for (const p of sys.proxies) {
      metrics[`rssPerConnKiB.${p.role}`] =
        ((held.rss[p.role] as number) - (before.rss[p.role] as number)) / Math.max(1, metrics.held);
      metrics[`rssHeldKiB.${p.role}`] = held.rss[p.role] as number;
    }
    await stop(g.child, 10_000);
    // Let the proxies close the tunnels before the next run.
    await new Promise((res) => setTimeout(res, 2_000));
    work = metrics.held / 1000;
  }
  const after = snapshot(sys);
  const cpu: Record<string, number> = {};
  const rss: Record<string, number> = {};
  for (const p of sys.proxies) {
    cpu[p.role] = (after.cpu[p.role] as number) - (before.cpu[p.role] as number);
    rss[p.role] = after.rss[p.role] as number;
    metrics[`cpuPerUnit.${p.role}`] = (cpu[p.role] as number) / work;
    // Read+write system calls per unit: exact, unlike CPU time on a shared machine.
    metrics[`syscallsPerUnit.${p.role}`] =
      ((after.syscalls[p.role] as number) - (before.syscalls[p.role] as number)) / work;
    metrics[`rssKiB.${p.role}`] = rss[p.role] as number;
  }
  return { load: def.id, system: sys.name, rep, metrics, cpuSeconds: cpu };
}

async function main(): Promise<void> {
  const a = args();
  const s = suite(a.full, a.reps);
  const loads = (a.only ? s.loads.filter((l) => a.only?.includes(l.id)) : s.loads).map((l) =>
    a.seconds !== undefined && l.kind !== "idle" ? { ...l, seconds: a.seconds } : l,
  );
  const t0 = Date.now();
  if (a.cpuProf) mkdirSync(a.cpuProf, { recursive: true });
  const topo: Topology =
    a.topology === "netns"
      ? await netnsTopology(say)
      : await loopbackTopology(say, {
          ...(a.before ? { before: a.before } : {}),
          ...(a.cpuProf ? { proxyNodeArgs: ["--cpu-prof", "--cpu-prof-dir", a.cpuProf] } : {}),
        });
  if (a.systems) topo.systems = topo.systems.filter((x) => a.systems?.includes(x.name));
  say(
    `${s.name} suite: ${loads.length} loads × ${topo.systems.length} systems (${topo.systems.map((x) => x.name).join(", ")}) × ${s.repetitions} repetitions`,
  );
  const samples: Sample[] = [];
  try {
    // Warm-up: certificates, pooled tunnels, JIT in every proxy and in the backend.
    for (const sys of topo.systems) {
      for (const kind of ["closed", "connrate"] as const)
        await loadgen(
          sys,
          { mode: kind, ...httpSpec(sys, { id: "warm", kind, title: "", seconds: 1, connections: 8 }) },
          60_000,
        );
      say(`warmed up ${sys.name}`);
    }
    for (const def of loads) {
      for (let rep = 0; rep < s.repetitions; rep++) {
        for (const sys of rotation(topo.systems, rep)) {
          const sample = await measure(sys, def, rep);
          samples.push(sample);
          const m = sample.metrics;
          const headline =
            m.gbps !== undefined
              ? `${m.gbps.toFixed(2)} Gbit/s`
              : m.held !== undefined
                ? `${m.held} held`
                : `${(m.perSecond ?? 0).toFixed(0)}/s p50 ${m.p50} µs p99 ${m.p99} µs`;
          say(`${def.id} rep ${rep + 1} ${sys.name}: ${headline}`);
        }
      }
    }
  } finally {
    await topo.close();
    await stopAll();
  }
  const cpus = os.cpus();
  const result = {
    date: new Date().toISOString(),
    suite: s.name,
    repetitions: s.repetitions,
    durationSeconds: Math.round((Date.now() - t0) / 1000),
    command: commandLine(),
    machine: {
      cores: cpus.length,
      cpu: cpus[0]?.model ?? "unknown",
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    },
    software: topo.describe,
    systems: topo.systems.map((x) => ({ name: x.name, label: x.label })),
    loads,
    summary: summarize(loads, samples),
    samples,
  };
  const dir = a.out ?? join(BENCH_ROOT, "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "latest.json"), `${JSON.stringify(result, null, 2)}\n`);
  const md = renderMarkdown(result);
  writeFileSync(join(dir, "latest.md"), md);
  if (a.readme) updateReadme(md);
  console.log(md);
  say(`done in ${result.durationSeconds} s; wrote ${join(dir, "latest.json")} and latest.md`);
}

/** How this run was started, for the report (without --readme, which only says where it goes). */
function commandLine(): string {
  const rest = process.argv.slice(2).filter((x) => x !== "--readme");
  return `npm run bench${rest.length > 0 ? ` -- ${rest.join(" ")}` : ""}`;
}

/** Replace the README's table between the bench markers with the new one. */
function updateReadme(md: string): void {
  const path = join(REPO_ROOT, "README.md");
  const text = readFileSync(path, "utf8");
  const begin = "<!-- bench:begin -->";
  const end = "<!-- bench:end -->";
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error("README.md has no <!-- bench:begin --> … <!-- bench:end --> section");
  writeFileSync(path, `${text.slice(0, i + begin.length)}\n${md}\n${text.slice(j)}`);
}

for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
process.once("exit", killAll);
try {
  await main();
} catch (err) {
  console.error(err);
  killAll();
  process.exitCode = 1;
}
