// The benchmark harness in its network-namespace topology, as root: `npm run bench` builds an
// `ambit lab` (two nodes, pods with in-pod capture), runs short loads through every system —
// direct, Ambit L4, Ambit L7 through the lab's waypoint pod, and the HAProxy pair — and writes its
// JSON. This checks the harness works end to end (each system carries traffic, the proxies' CPU
// is read from /proc, the idle connections are held), not how fast anything is.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { requireRoot } from "../support/netns.js";
import { repoRoot, runAmbit, runProgram } from "../support/repo.js";

interface Sample {
  load: string;
  system: string;
  metrics: Record<string, number>;
  cpuSeconds: Record<string, number>;
}

describe("bench: the netns topology (lab pods, in-pod capture)", { timeout: 600_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), "ambit-bench-netns-test-"));
  let samples: Sample[] = [];
  let topology = "";

  before(async () => {
    requireRoot();
    await runAmbit(["lab", "down"], { timeoutMs: 120_000 });
    const r = await runProgram(
      process.execPath,
      [
        join(repoRoot(), "bench", "dist", "src", "run.js"),
        "--topology",
        "netns",
        "--only",
        "closed-c50,connrate-c16,iperf-p1,idle-1000",
        "--reps",
        "1",
        "--seconds",
        "1",
        "--out",
        out,
      ],
      { timeoutMs: 540_000 },
    );
    assert.equal(r.code, 0, `bench failed:\n${r.stderr}\n${r.stdout.slice(-4000)}`);
    const result = JSON.parse(readFileSync(join(out, "latest.json"), "utf8")) as {
      samples: Sample[];
      software: Record<string, string>;
    };
    samples = result.samples;
    topology = result.software.topology ?? "";
  });

  after(async () => {
    rmSync(out, { recursive: true, force: true });
    await runAmbit(["lab", "down"], { timeoutMs: 120_000 });
  });

  const sample = (load: string, system: string): Sample => {
    const s = samples.find((x) => x.load === load && x.system === system);
    assert.ok(s, `no sample for ${load} on ${system}`);
    return s;
  };
  const systems = ["direct", "ambit", "ambit-l7", "haproxy"];

  test("it ran in the lab's namespaces", () => {
    assert.match(topology, /^netns/);
  });

  test("every system carries HTTP requests, without errors", () => {
    for (const load of ["closed-c50", "connrate-c16"])
      for (const system of systems) {
        const m = sample(load, system).metrics;
        assert.ok((m.completed ?? 0) > 50, `${load} ${system}: only ${m.completed} requests`);
        assert.equal(m.errors, 0, `${load} ${system}: ${m.errors} errors`);
      }
  });

  test("iperf3 streams through every system", () => {
    for (const system of systems)
      assert.ok((sample("iperf-p1", system).metrics.gbps ?? 0) > 0.01, `iperf3 through ${system}`);
  });

  test("the proxies' CPU is read from /proc: client side, waypoint, server side", () => {
    const roles: Record<string, string[]> = {
      ambit: ["client-side", "server-side"],
      "ambit-l7": ["client-side", "waypoint", "server-side"],
      haproxy: ["client-side", "server-side"],
    };
    for (const [system, want] of Object.entries(roles)) {
      const s = sample("closed-c50", system);
      for (const role of want)
        assert.ok((s.cpuSeconds[role] ?? 0) > 0, `${system} ${role}: no CPU time measured`);
    }
  });

  test("1,000 idle connections are held through the mesh", () => {
    for (const system of systems) {
      const m = sample("idle-1000", system).metrics;
      assert.equal(m.held, 1000, `${system}: held ${m.held} of 1000`);
    }
  });
});
