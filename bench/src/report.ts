// Summaries of repeated runs (median and spread per system, latency added over direct paired by
// repetition, throughput ratios) and the markdown table written to bench/results/latest.md.
import { addedOver, fmtSpread, ratio, spread, type Spread } from "./stats.js";
import type { LoadDef } from "./suite.js";

export interface Sample {
  load: string;
  system: string;
  rep: number;
  metrics: Record<string, number>;
  cpuSeconds: Record<string, number>;
}

export interface LoadSummary {
  /** Per system, per metric: median and spread over the repetitions. */
  systems: Record<string, Record<string, Spread>>;
  /** Open loop and round trip: latency added over direct (µs), paired by repetition. */
  added?: Record<string, Record<"p50" | "p90" | "p99" | "p999", Spread>>;
  /**
   * Throughput loads: ratios of medians (vsBefore: Ambit L4 against `ambit-l4-before`, Ambit L7
   * against `ambit-l7-before`, when those ran).
   */
  ratios?: Record<string, { vsDirect: number; vsCPeer: number; vsBefore?: number }>;
}

const PERCENTILES = ["p50", "p90", "p99", "p999"] as const;
/** Every system the report knows, in table order. */
const SYSTEMS = ["direct", "ambit", "ambit-l7", "haproxy", "ambit-l4-before", "ambit-l7-before"] as const;
/** The "before" build's counterpart of each system that has one (with `--before DIR`). */
const BEFORE_OF: Record<string, string> = { ambit: "ambit-l4-before", "ambit-l7": "ambit-l7-before" };
const ROLES = ["client-side", "waypoint", "server-side"] as const;

/** Loads whose latency is reported as added over direct: open loop, and the 1-connection round trip. */
function latencyLoad(def: LoadDef): boolean {
  return def.kind === "open" || (def.kind === "closed" && def.connections === 1);
}

function throughputMetric(def: LoadDef): string | undefined {
  if (def.kind === "closed" || def.kind === "connrate") return "perSecond";
  if (def.kind === "iperf") return "gbps";
  return undefined;
}

export function summarize(
  loads: readonly LoadDef[],
  samples: readonly Sample[],
): Record<string, LoadSummary> {
  const out: Record<string, LoadSummary> = {};
  for (const def of loads) {
    const mine = samples.filter((s) => s.load === def.id);
    const systems: LoadSummary["systems"] = {};
    const series = (system: string, metric: string): number[] =>
      mine
        .filter((s) => s.system === system)
        .sort((a, b) => a.rep - b.rep)
        .map((s) => s.metrics[metric] ?? Number.NaN);
    for (const system of new Set(mine.map((s) => s.system))) {
      const metrics = new Set(mine.filter((s) => s.system === system).flatMap((s) => Object.keys(s.metrics)));
      systems[system] = Object.fromEntries([...metrics].map((m) => [m, spread(series(system, m))]));
    }
    const summary: LoadSummary = { systems };
    if (latencyLoad(def)) {
      summary.added = {};
      for (const system of Object.keys(systems).filter((x) => x !== "direct"))
        summary.added[system] = Object.fromEntries(
          PERCENTILES.map((p) => [p, addedOver(series(system, p), series("direct", p))]),
        ) as Record<(typeof PERCENTILES)[number], Spread>;
    }
    const metric = throughputMetric(def);
    if (metric) {
      const med = (system: string): number | undefined => systems[system]?.[metric]?.median;
      summary.ratios = {};
      for (const system of Object.keys(systems)) {
        const before = BEFORE_OF[system];
        summary.ratios[system] = {
          vsDirect: ratio(med(system), med("direct")),
          vsCPeer: ratio(med(system), med("haproxy")),
          ...(before && systems[before] ? { vsBefore: ratio(med(system), med(before)) } : {}),
        };
      }
    }
    out[def.id] = summary;
  }
  return out;
}

/** Anchors from the Benchmarks issue, shown beside the figures (not pass/fail). */
export const ANCHORS = {
  latency1000: "ztunnel: +170 µs p90, +200 µs p99 (two hops, 1000 req/s, 1 KB)",
  cpu: "ztunnel: ~0.06 vCPU per 1000 req/s (= 0.06 CPU s / 1000 req); ~12 MB per 1000 req/s",
  closed: "pre-project Node HBONE relay: 15.3k req/s vs HAProxy 12.7k (1.2×), direct 68k (wrk -c50)",
  connrate: "pre-project Node HBONE relay: 1,876/s vs HAProxy 421/s (4.5×)",
  iperf1: "pre-project Node relay 1.89 Gbit/s vs HAProxy 2.94 (0.64×), direct 10.9; ztunnel ~0.9× bare TCP",
  roundTrip: "1 connection, pinned to one core: direct 31 µs, HAProxy pair +96 µs, Node HBONE pair +227 µs",
} as const;

interface Report {
  date: string;
  suite: string;
  repetitions: number;
  durationSeconds: number;
  command: string;
  machine: { cores: number; cpu: string; kernel: string; node: string; memoryGiB: number };
  software: Record<string, string>;
  systems: { name: string; label: string }[];
  loads: LoadDef[];
  summary: Record<string, LoadSummary>;
}

const LABEL: Record<string, string> = {
  direct: "direct",
  ambit: "Ambit L4",
  "ambit-l7": "Ambit L7 (waypoint)",
  haproxy: "HAProxy (C peer)",
  "ambit-l4-before": "Ambit L4 before",
  "ambit-l7-before": "Ambit L7 before",
};
const x = (v: number | undefined): string =>
  v !== undefined && Number.isFinite(v) ? `${v.toFixed(2)}×` : "—";
const mib = (s: Spread | undefined): string =>
  s && Number.isFinite(s.median)
    ? fmtSpread({ ...s, median: s.median / 1024, min: s.min / 1024, max: s.max / 1024, runs: s.runs }, 1)
    : "—";

export function renderMarkdown(r: Report): string {
  const L: string[] = [];
  const present = SYSTEMS.filter((sys) => r.systems.some((s) => s.name === sys));
  const proxied = present.filter((sys) => sys !== "direct");
  const hasBefore = present.some((sys) => Object.values(BEFORE_OF).includes(sys));
  L.push(
    `Suite **${r.suite}**, ${r.date.slice(0, 16).replace("T", " ")} UTC, ${r.durationSeconds} s, \`${r.command}\`.`,
  );
  L.push(
    `Machine: ${r.machine.cores} cores, ${r.machine.cpu}, ${r.machine.kernel}, Node.js ${r.machine.node}, ${r.machine.memoryGiB} GiB; ` +
      `${r.software.haproxy ?? ""}; ${r.software.iperf3 ?? ""}; ${r.software.openssl ?? ""}.`,
  );
  L.push(
    `Topology: ${r.software.topology ?? ""}. Every process (client, backend, proxies) shares the same cores.`,
  );
  if (r.software.before) L.push(`Before/after: ${r.software.before}.`);
  L.push(
    `Cells: median (min…max) of ${r.repetitions} interleaved repetitions; added latency is per repetition against the direct run next to it.`,
  );
  L.push("");

  L.push(
    "**Latency (HTTP/1.1, 1 KiB responses) added over direct, µs**: open loop at fixed rates, corrected for coordinated omission; round trip: one connection, one request at a time (closed loop)",
  );
  L.push("");
  L.push("| load | system | achieved req/s | p50 | p90 | p99 | p99.9 | anchor |");
  L.push("|---|---|---|---|---|---|---|---|");
  for (const def of r.loads.filter(latencyLoad)) {
    const s = r.summary[def.id];
    if (!s) continue;
    const anchor = def.rate === 1000 ? ANCHORS.latency1000 : def.kind === "closed" ? ANCHORS.roundTrip : "";
    const d = s.systems.direct;
    if (d)
      L.push(
        `| ${def.title} | direct (absolute) | ${fmtSpread(d.perSecond)} | ${PERCENTILES.map((p) => fmtSpread(d[p])).join(" | ")} | |`,
      );
    for (const sys of proxied) {
      const a = s.added?.[sys];
      const m = s.systems[sys];
      if (!a || !m) continue;
      L.push(
        `| ${def.title} | ${LABEL[sys]} (added) | ${fmtSpread(m.perSecond)} | ${PERCENTILES.map((p) => fmtSpread(a[p])).join(" | ")} | ${sys === "ambit" ? anchor : ""} |`,
      );
    }
  }
  L.push("");

  L.push("**Throughput** (ratios of medians)");
  L.push("");
  L.push(
    `| load | system | median (min…max) | ÷ direct | ÷ HAProxy |${hasBefore ? " ÷ before (same path, --before build) |" : ""} anchor |`,
  );
  L.push(`|---|---|---|---|---|${hasBefore ? "---|" : ""}---|`);
  for (const def of r.loads) {
    const metric = throughputMetric(def);
    const s = r.summary[def.id];
    if (!metric || !s) continue;
    const digits = metric === "gbps" ? 2 : 0;
    const unit = metric === "gbps" ? " Gbit/s" : "/s";
    const anchor =
      def.kind === "closed" && def.connections === 50
        ? ANCHORS.closed
        : def.kind === "connrate"
          ? ANCHORS.connrate
          : def.streams === 1
            ? ANCHORS.iperf1
            : "";
    for (const sys of present) {
      const v = s.systems[sys]?.[metric];
      if (!v) continue;
      const q = s.ratios?.[sys];
      const mine = sys === "direct" ? "" : x(q?.vsDirect);
      const vsC = sys === "haproxy" || sys === "direct" ? "" : x(q?.vsCPeer);
      const vsB = hasBefore ? ` ${BEFORE_OF[sys] ? x(q?.vsBefore) : ""} |` : "";
      L.push(
        `| ${def.title} | ${LABEL[sys]} | ${fmtSpread(v, digits, unit)} | ${mine} | ${vsC} |${vsB} ${sys === "ambit" ? anchor : ""} |`,
      );
    }
  }
  L.push("");

  L.push(
    "**CPU and memory of each proxy process** (CPU: utime+stime from /proc/PID/stat per 1000 requests, per GB for iperf3; RSS: VmRSS after the run; the L7 path has three proxies)",
  );
  L.push("");
  L.push(
    `| load | system | ${ROLES.map((role) => `CPU s ${role}`).join(" | ")} | ${ROLES.map((role) => `RSS MiB ${role}`).join(" | ")} | anchor |`,
  );
  L.push(`|---|---|${ROLES.map(() => "---|---|").join("")}---|`);
  for (const def of r.loads.filter((d) => d.kind !== "idle")) {
    const s = r.summary[def.id];
    if (!s) continue;
    for (const sys of proxied) {
      const m = s.systems[sys];
      if (!m) continue;
      const anchor =
        sys === "ambit" && def.kind === "open" && def.rate === 1000 && def.connections === 4
          ? ANCHORS.cpu
          : "";
      L.push(
        `| ${def.title} | ${LABEL[sys]} | ${ROLES.map((role) => fmtSpread(m[`cpuPerUnit.${role}`], 3)).join(" | ")} | ${ROLES.map((role) => mib(m[`rssKiB.${role}`])).join(" | ")} | ${anchor} |`,
      );
    }
  }
  L.push("");

  L.push(
    "**System calls of each Ambit proxy process** (read + write family, from /proc/PID/io syscr + syscw, per 1000 requests, per GB for iperf3: exact counts, unlike CPU time on a shared machine; HAProxy uses send/recv, which these counters do not see, so it has no row)",
  );
  L.push("");
  L.push(`| load | system | ${ROLES.map((role) => `${role}`).join(" | ")} |`);
  L.push(`|---|---|${ROLES.map(() => "---|").join("")}`);
  for (const def of r.loads.filter((d) => d.kind !== "idle")) {
    const s = r.summary[def.id];
    if (!s) continue;
    for (const sys of proxied.filter((x) => x !== "haproxy")) {
      const m = s.systems[sys];
      if (!m) continue;
      L.push(
        `| ${def.title} | ${LABEL[sys]} | ${ROLES.map((role) => fmtSpread(m[`syscallsPerUnit.${role}`])).join(" | ")} |`,
      );
    }
  }
  L.push("");

  for (const def of r.loads.filter((d) => d.kind === "idle")) {
    const s = r.summary[def.id];
    if (!s) continue;
    L.push(
      `**${def.title}** (RSS growth of each proxy per held connection; each connection made one request first)`,
    );
    L.push("");
    L.push(
      `| system | held | open time s | ${ROLES.map((role) => `KiB/conn ${role}`).join(" | ")} | ${ROLES.map((role) => `RSS MiB held ${role}`).join(" | ")} |`,
    );
    L.push(`|---|---|---|${ROLES.map(() => "---|---|").join("")}`);
    for (const sys of present) {
      const m = s.systems[sys];
      if (!m) continue;
      L.push(
        `| ${LABEL[sys]} | ${fmtSpread(m.held)} | ${fmtSpread(m.openSeconds, 1)} | ${ROLES.map((role) => fmtSpread(m[`rssPerConnKiB.${role}`], 1)).join(" | ")} | ${ROLES.map((role) => mib(m[`rssHeldKiB.${role}`])).join(" | ")} |`,
      );
    }
    L.push("");
  }
  if (hasBefore) L.push(...beforeAfter(r, present));
  return `${L.join("\n")}\n`;
}

/** Before/after per path (with `--before DIR`): the headline figures side by side, after ÷ before. */
function beforeAfter(r: Report, present: readonly string[]): string[] {
  const L: string[] = [];
  const pairs = Object.entries(BEFORE_OF).filter(([a, b]) => present.includes(a) && present.includes(b));
  if (pairs.length === 0) return L;
  L.push(
    "**Before → after** (medians of the same path, this build vs the `--before` build; CPU and syscalls per 1000 requests, per held connection for idle; latency: absolute, µs)",
  );
  L.push("");
  L.push("| load | path | measure | before | after | after ÷ before |");
  L.push("|---|---|---|---|---|---|");
  const measures = (def: LoadDef): [string, string, number][] => {
    const m: [string, string, number][] = [];
    if (def.kind === "idle") m.push(["held", "held", 0]);
    else if (def.kind === "iperf") m.push(["Gbit/s", "gbps", 2]);
    else {
      m.push(["req/s", "perSecond", 0]);
      for (const p of ["p50", "p99", "p999"]) m.push([`${p} µs`, p, 0]);
    }
    for (const role of ROLES) {
      if (def.kind !== "idle") m.push([`CPU s ${role}`, `cpuPerUnit.${role}`, 3]);
      else m.push([`KiB/conn ${role}`, `rssPerConnKiB.${role}`, 1]);
      if (def.kind !== "idle") m.push([`syscalls ${role}`, `syscallsPerUnit.${role}`, 0]);
    }
    return m;
  };
  for (const def of r.loads) {
    const s = r.summary[def.id];
    if (!s) continue;
    for (const [after, before] of pairs) {
      const A = s.systems[after];
      const B = s.systems[before];
      if (!A || !B) continue;
      for (const [label, metric, digits] of measures(def)) {
        const a = A[metric];
        const b = B[metric];
        if (!a || !b || !Number.isFinite(a.median) || !Number.isFinite(b.median)) continue;
        L.push(
          `| ${def.title} | ${LABEL[after]} | ${label} | ${fmtSpread(b, digits)} | ${fmtSpread(a, digits)} | ${x(ratio(a.median, b.median))} |`,
        );
      }
    }
  }
  L.push("");
  return L;
}
