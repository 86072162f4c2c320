// The lab end to end, as root, with real parts: two nodes in network namespaces running
// `ambit node` in capture mode, pods wired by Debian's CNI plugins with ambit-cni chained, curl in
// the pods, tcpdump on the underlay. Then `ambit lab down` must leave nothing behind, and
// `ambit demo` must pass and clean up after itself.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { captureUnderlay } from "../../src/lab/demo.js";
import { labDir, readState } from "../../src/lab/lab.js";
import { requireRoot } from "../support/netns.js";
import { repoRoot, runAmbit } from "../support/repo.js";

const run = promisify(execFile);
const NS = "labtest";

async function ambit(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const r = await runAmbit(args, { timeoutMs });
  assert.equal(r.code, 0, `ambit ${args.join(" ")} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** curl from a pod; resolves with its exit code and output. */
async function curlFrom(pod: string, url: string, maxTime = 4): Promise<{ code: number; out: string }> {
  const r = await runAmbit(
    ["lab", "exec", pod, "-n", NS, "--", "curl", "-sS", "--max-time", String(maxTime), url],
    {
      timeoutMs: 30_000,
    },
  );
  return { code: r.code ?? -1, out: r.stdout + r.stderr };
}

async function eventually(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

function manifest(name: string, text: string): string {
  const p = join(tmpdir(), `ambit-labtest-${process.pid}-${name}.yaml`);
  writeFileSync(p, text);
  return p;
}

const hostFacts = async (): Promise<{ links: string; routes: string; rules: string; iptables: string }> => ({
  links: (await run("ip", ["-o", "link", "show"])).stdout.replace(/\s+link\/.*$/gm, ""),
  routes: (await run("ip", ["route", "show", "table", "all"])).stdout,
  rules: (await run("ip", ["rule", "show"])).stdout,
  iptables: (await run("iptables-save")).stdout.replace(/^#.*$/gm, "").replace(/\[\d+:\d+\]/g, ""),
});

describe("ambit lab: a two-node mesh in network namespaces", { timeout: 600_000 }, () => {
  let hostBefore: Awaited<ReturnType<typeof hostFacts>>;
  let backendIp = "";

  before(async () => {
    requireRoot();
    await ambit(["lab", "down"]);
    hostBefore = await hostFacts();
    await ambit(["lab", "up"], 180_000);
    await ambit([
      "lab",
      "apply",
      "-f",
      manifest(
        "svc",
        `apiVersion: v1
kind: Service
metadata: { name: backend, namespace: ${NS} }
spec:
  clusterIP: 10.96.0.40
  selector: { app: backend }
  ports: [{ name: http, port: 9090, targetPort: 9090 }]
`,
      ),
    ]);
    const backend = join(repoRoot(), "demo", "apps", "backend.mjs");
    await ambit([
      "lab",
      "run",
      "backend",
      "-n",
      NS,
      "--sa",
      "backend",
      "--labels",
      "app=backend",
      "--node",
      "node-2",
      "--",
      process.execPath,
      backend,
    ]);
    await ambit([
      "lab",
      "run",
      "client",
      "-n",
      NS,
      "--sa",
      "client",
      "--node",
      "node-1",
      "--",
      "sleep",
      "3600",
    ]);
    await ambit([
      "lab",
      "run",
      "outsider",
      "-n",
      NS,
      "--sa",
      "outsider",
      "--node",
      "node-1",
      "--no-mesh",
      "--",
      "sleep",
      "3600",
    ]);
    const status = JSON.parse(await ambit(["lab", "status", "-o", "json"])) as {
      pods: { name: string; ip: string; inMesh: boolean }[];
    };
    backendIp = status.pods.find((p) => p.name === "backend")?.ip ?? "";
    assert.match(backendIp, /^10\.244\.2\.\d+$/);
    await eventually(
      "the backend to serve through the mesh",
      30_000,
      async () => (await curlFrom("client", "http://10.96.0.40:9090/")).code === 0,
    );
  });

  after(async () => {
    await runAmbit(["lab", "down"], { timeoutMs: 120_000 });
  });

  test("lab status describes nodes, pods and the underlay", async () => {
    const st = JSON.parse(await ambit(["lab", "status", "-o", "json"])) as {
      nodes: { name: string; netns: string; ip: string; podCIDR: string }[];
      pods: { name: string; namespace: string; node: string; ip: string; netns: string; inMesh: boolean }[];
      underlay: { netns: string; interface: string };
    };
    assert.deepEqual(
      st.nodes.map((n) => [n.name, n.podCIDR]),
      [
        ["node-1", "10.244.1.0/24"],
        ["node-2", "10.244.2.0/24"],
      ],
    );
    assert.deepEqual(st.pods.map((p) => [p.name, p.node, p.inMesh]).sort(), [
      ["backend", "node-2", true],
      ["client", "node-1", true],
      ["outsider", "node-1", false],
    ]);
    assert.ok(st.underlay.netns && st.underlay.interface);
  });

  test("curl on node 1 reaches a Service on node 2 by address and by DNS name, over mTLS on 15008 only", async () => {
    const byIp = await curlFrom("client", "http://10.96.0.40:9090/by-ip");
    assert.equal(byIp.code, 0, byIp.out);
    assert.match(byIp.out, /"service":"backend"/);
    let byName = { code: -1, out: "" };
    const cap = await captureUnderlay(readState()?.dir ?? labDir(), async () => {
      byName = await curlFrom("client", `http://backend.${NS}.svc.cluster.local:9090/by-name`);
    });
    assert.equal(byName.code, 0, byName.out);
    assert.match(byName.out, /"path":"\/by-name"/);
    // The backend sees the client's own address: delivery keeps the source.
    assert.match(byName.out, /"caller":"(::ffff:)?10\.244\.1\.\d+"/);
    const podPackets = cap.headers
      .split("\n")
      .filter((l) => / IP 10\.244\.\d+\.\d+\.\d+ > 10\.244\./.test(l));
    assert.ok(podPackets.length > 0, `no pod-to-pod packets captured:\n${cap.headers}`);
    const off = podPackets.filter((l) => !/\.15008[ :]/.test(l));
    assert.deepEqual(off, [], "pod-to-pod packets not on 15008");
    assert.doesNotMatch(cap.ascii, /GET \/by-name|HTTP\/1\.1 200/, "plaintext HTTP on the underlay");
  });

  test("STRICT PeerAuthentication refuses a pod outside the mesh", async () => {
    const direct = `http://${backendIp}:9090/plain`;
    const before = await curlFrom("outsider", direct);
    assert.equal(before.code, 0, `PERMISSIVE should admit plaintext: ${before.out}`);
    await ambit([
      "lab",
      "apply",
      "-f",
      manifest(
        "pa",
        `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: strict, namespace: ${NS} }
spec: { mtls: { mode: STRICT } }
`,
      ),
    ]);
    await eventually(
      "STRICT to refuse plaintext",
      15_000,
      async () => (await curlFrom("outsider", direct)).code !== 0,
    );
    const meshed = await curlFrom("client", "http://10.96.0.40:9090/strict");
    assert.equal(meshed.code, 0, `a mesh client still passes STRICT: ${meshed.out}`);
  });

  test("an L4 AuthorizationPolicy denies, then allows", async () => {
    const policy = (principals: string[]): string =>
      manifest(
        `ap-${principals.length}`,
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: backend-callers, namespace: ${NS} }
spec:
  selector: { matchLabels: { app: backend } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: ${JSON.stringify(principals)} } }] }]
`,
      );
    await ambit(["lab", "apply", "-f", policy(["cluster.local/ns/other/sa/admin"])]);
    await eventually(
      "the deny to take effect",
      15_000,
      async () => (await curlFrom("client", "http://10.96.0.40:9090/")).code !== 0,
    );
    await ambit([
      "lab",
      "apply",
      "-f",
      policy(["cluster.local/ns/other/sa/admin", `cluster.local/ns/${NS}/sa/client`]),
    ]);
    await eventually(
      "the allow to take effect",
      15_000,
      async () => (await curlFrom("client", "http://10.96.0.40:9090/")).code === 0,
    );
  });

  test("with its node proxy stopped a captured pod's connections fail and nothing leaves in plaintext; restart recovers", async () => {
    await ambit(["lab", "node", "stop", "node-1"]);
    let down = { code: 0, out: "" };
    const cap = await captureUnderlay(readState()?.dir ?? labDir(), async () => {
      down = await curlFrom("client", "http://10.96.0.40:9090/while-down", 3);
    });
    assert.notEqual(down.code, 0, `the call succeeded with the node proxy down: ${down.out}`);
    const fromNode1Pods = cap.headers.split("\n").filter((l) => / IP 10\.244\.1\.\d+\.\d+ > /.test(l));
    assert.deepEqual(fromNode1Pods, [], "packets left node 1's pods while its proxy was down");
    await ambit(["lab", "node", "start", "node-1"], 120_000);
    await eventually(
      "traffic to recover after the restart",
      30_000,
      async () => (await curlFrom("client", "http://10.96.0.40:9090/again")).code === 0,
    );
  });

  test("lab down leaves no namespace, link, route, rule, iptables rule, process or file behind; twice is fine", async () => {
    const pids = [
      readState()?.controlPlane.pid,
      ...(readState()?.nodes.map((n) => n.pid) ?? []),
      ...(readState()?.pods.map((p) => p.pid) ?? []),
    ];
    await ambit(["lab", "down"]);
    await ambit(["lab", "down"]);
    const netns = (await run("ip", ["netns", "list"])).stdout;
    assert.doesNotMatch(netns, /^ambit-/m);
    assert.equal(existsSync(labDir()), false);
    for (const pid of pids) {
      if (pid === undefined) continue;
      assert.throws(() => process.kill(pid, 0), `process ${pid} still alive`);
    }
    assert.deepEqual(await hostFacts(), hostBefore);
  });
});

describe("ambit demo", { timeout: 300_000 }, () => {
  test("passes every step and leaves nothing behind", async () => {
    const r = await runAmbit(["demo"], { timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Summary: (\d+)\/\1 steps passed/);
    assert.doesNotMatch((await run("ip", ["netns", "list"])).stdout, /^ambit-/m);
    assert.equal(existsSync(labDir()), false);
  });
});
