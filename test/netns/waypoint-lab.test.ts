// The waypoint in the lab, as root, with real parts: `ambit waypoint apply --enroll-namespace`
// makes the lab run a waypoint pod for the Gateway; apps in pods (captured by the node proxies'
// in-pod iptables) are reached by DNS name with curl (HTTP/1.1 and HTTP/2) and h2load; the
// waypoint routes (HTTPRoute), enforces L7 policy, tells the app who called (XFCC), and the
// destination's node proxy sees the waypoint's identity, so an L4 policy admitting only the
// waypoint stops callers that bypass it. A stopped waypoint fails calls closed (as Istio ambient
// does) until the lab restarts it.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { readState } from "../../src/lab/lab.js";
import { alive, stopProcesses } from "../../src/lab/sys.js";
import { requireRoot } from "../support/netns.js";
import { repoRoot, runAmbit } from "../support/repo.js";

const NS = "wplab";
const ECHO = `http://echo.${NS}.svc.cluster.local`;
const CLIENT_ID = `spiffe://cluster.local/ns/${NS}/sa/client`;
const WAYPOINT_ID = `spiffe://cluster.local/ns/${NS}/sa/waypoint`;

async function ambit(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const r = await runAmbit(args, { timeoutMs });
  assert.equal(r.code, 0, `ambit ${args.join(" ")} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Reply {
  code: number;
  status: number;
  headers: string;
  body: string;
}

/** curl from the client pod: exit code, status, response headers and body. */
async function curl(url: string, extra: readonly string[] = [], pod = "client"): Promise<Reply> {
  const r = await runAmbit(
    [
      "lab",
      "exec",
      pod,
      "-n",
      NS,
      "--",
      "curl",
      "-sS",
      "--max-time",
      "5",
      "-D",
      "-",
      "-w",
      "\n%{http_code}",
      ...extra,
      url,
    ],
    { timeoutMs: 30_000 },
  );
  const out = r.stdout;
  const nl = out.lastIndexOf("\n");
  const status = Number(out.slice(nl + 1)) || 0;
  const text = out.slice(0, Math.max(nl, 0));
  const split = text.search(/\r?\n\r?\n/);
  return {
    code: r.code ?? -1,
    status,
    headers: split >= 0 ? text.slice(0, split) : text,
    body: split >= 0 ? text.slice(split).trim() : "",
  };
}

interface Echoed {
  app: string;
  path: string;
  headers: Record<string, string>;
}

function echoed(r: Reply): Echoed {
  assert.equal(r.status, 200, `expected 200, got ${r.status} (curl exit ${r.code}): ${r.headers}\n${r.body}`);
  return JSON.parse(r.body) as Echoed;
}

async function eventually(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

function manifest(name: string, text: string): string {
  const p = join(tmpdir(), `ambit-wplab-${process.pid}-${name}.yaml`);
  writeFileSync(p, text);
  return p;
}

const apply = (name: string, text: string): Promise<string> =>
  ambit(["lab", "apply", "-f", manifest(name, text)]);

describe(
  "waypoint in the lab: deployed from a Gateway, steered by istio.io/use-waypoint",
  { timeout: 600_000 },
  () => {
    const app = join(repoRoot(), "test", "fixtures", "apps", "echo.mjs");
    let echoIp = "";

    before(async () => {
      requireRoot();
      await ambit(["lab", "down"]);
      await ambit(["lab", "up"], 180_000);
      await apply(
        "services",
        `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: ${NS} }
spec:
  clusterIP: 10.96.0.60
  selector: { app: echo }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: echo-v2, namespace: ${NS} }
spec:
  clusterIP: 10.96.0.61
  selector: { app: echo-v2 }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`,
      );
      // The waypoint first: its Namespace labels must survive the pods created after it.
      const out = await ambit(["waypoint", "apply", "-n", NS, "--enroll-namespace"]);
      assert.match(out, new RegExp(`waypoint ${NS}/waypoint: pod waypoint-0 on node-\\d .*ready`));
      for (const [name, label, node] of [
        ["echo-1", "echo", "node-2"],
        ["echo-v2-1", "echo-v2", "node-2"],
      ] as const) {
        await ambit([
          "lab",
          "run",
          name,
          "-n",
          NS,
          "--sa",
          "echo",
          "--labels",
          `app=${label}`,
          "--node",
          node,
          "--",
          "env",
          `NAME=${label}`,
          process.execPath,
          app,
        ]);
      }
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
      const st = JSON.parse(await ambit(["lab", "status", "-o", "json"])) as {
        pods: { name: string; ip: string; inMesh: boolean }[];
      };
      echoIp = st.pods.find((p) => p.name === "echo-1")?.ip ?? "";
      const wp = st.pods.find((p) => p.name === "waypoint-0");
      assert.ok(wp && !wp.inMesh, "the waypoint pod runs outside capture, as Istio's does");
      await eventually(
        "the echo app to answer through the mesh",
        30_000,
        async () => (await curl(`${ECHO}/`)).status === 200,
      );
    });

    after(async () => {
      await runAmbit(["lab", "down"], { timeoutMs: 120_000 });
    });

    test("a call by DNS name goes through the waypoint: the app gets XFCC, the destination node proxy sees the waypoint", async () => {
      const r = echoed(await curl(`${ECHO}/hello`, ["-H", "x-forwarded-client-cert: By=spoofed"]));
      assert.equal(r.app, "echo");
      assert.match(
        r.headers["x-forwarded-client-cert"] ?? "",
        new RegExp(`^By=${WAYPOINT_ID};Hash=[0-9a-f]{64};URI=${CLIENT_ID}$`),
      );
      assert.match(r.headers["traceparent"] ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      const wpLog = await ambit(["lab", "logs", "waypoint-0", "-n", NS]);
      assert.match(wpLog, /"event":"request".*"path":"\/hello".*"status":200/);
      await eventually("node-2 to log the waypoint as the caller", 10_000, async () =>
        (await ambit(["lab", "logs", "node-2"]))
          .split("\n")
          .some((l) => l.includes('"direction":"inbound"') && l.includes(WAYPOINT_ID)),
      );
    });

    test("HTTP/2 with curl --http2-prior-knowledge and h2load, HTTPRoute header routing and response headers", async () => {
      await apply(
        "route",
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: echo, namespace: ${NS} }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules:
    - matches: [{ headers: [{ name: x-version, value: v2 }] }]
      backendRefs: [{ name: echo-v2, port: 80 }]
    - filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-routed-by, value: waypoint }] }
      backendRefs: [{ name: echo, port: 80 }]
`,
      );
      await eventually("the route to be pushed", 20_000, async () => {
        const r = await curl(`${ECHO}/v`, ["-H", "x-version: v2"]);
        return r.status === 200 && (JSON.parse(r.body) as Echoed).app === "echo-v2";
      });
      const plain = await curl(`${ECHO}/v`);
      assert.equal(echoed(plain).app, "echo");
      assert.match(plain.headers, /^x-routed-by: waypoint\r?$/im);
      const h2 = await curl(`${ECHO}/h2`, ["--http2-prior-knowledge"]);
      assert.match(h2.headers, /^HTTP\/2 200/);
      assert.equal(echoed(h2).path, "/h2");
      const load = await ambit(
        [
          "lab",
          "exec",
          "client",
          "-n",
          NS,
          "--",
          "h2load",
          "-n",
          "300",
          "-c",
          "3",
          "-m",
          "10",
          `${ECHO}/load`,
        ],
        120_000,
      );
      assert.match(load, /300 succeeded, 0 failed, 0 errored/, load);
      assert.match(load, /status codes: 300 2xx/, load);
    });

    test("AuthorizationPolicy at L7 on the Service denies a path; an L4 policy admitting only the waypoint blocks a bypass", async () => {
      await apply(
        "policies",
        `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: ${NS} }
spec:
  targetRefs: [{ kind: Service, group: "", name: echo }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-waypoint, namespace: ${NS} }
spec:
  selector: { matchLabels: { app: echo } }
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/${NS}/sa/waypoint"] } }] }]
`,
      );
      await eventually("the L7 policy", 20_000, async () => (await curl(`${ECHO}/admin/x`)).status === 403);
      const denied = await curl(`${ECHO}/admin/users`);
      assert.equal(denied.status, 403);
      assert.equal(denied.body, "RBAC: access denied");
      assert.equal((await curl(`${ECHO}/public`)).status, 200);
      // The pod's own address is a workload address without a waypoint: the client's identity
      // reaches the backend's node proxy, which refuses it.
      await eventually(
        "the bypass to be refused",
        20_000,
        async () => (await curl(`http://${echoIp}:8080/direct`)).status !== 200,
      );
      assert.equal((await curl(`${ECHO}/via-waypoint`)).status, 200);
    });

    test("a stopped waypoint fails calls closed (no bypass); `lab apply` restarts it and traffic resumes", async () => {
      const s = readState();
      const wp = s?.pods.find((p) => p.name === "waypoint-0" && p.namespace === NS);
      assert.ok(wp && alive(wp.pid));
      await stopProcesses([wp.pid]);
      const down = await curl(`${ECHO}/while-down`);
      assert.notEqual(down.status, 200, "traffic bypassed a stopped waypoint");
      const restarted = await apply(
        "noop",
        `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS}, labels: { istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint } }\n`,
      );
      assert.match(restarted, new RegExp(`waypoint ${NS}/waypoint: pod waypoint-0 .*ready`));
      await eventually(
        "traffic through the restarted waypoint",
        30_000,
        async () => (await curl(`${ECHO}/back`)).status === 200,
      );
    });

    test("`lab delete` of the Gateway removes its pod; the Services are then reached without a waypoint", async () => {
      // The L4 policy admits only the waypoint: drop it first, or nothing could reach the app.
      await ambit(["lab", "delete", "authorizationpolicy", "only-waypoint", "-n", NS]);
      const out = await ambit(["lab", "delete", "gateway", "waypoint", "-n", NS]);
      assert.match(out, new RegExp(`waypoint ${NS}/waypoint: Gateway deleted, pod removed`));
      const st = JSON.parse(await ambit(["lab", "status", "-o", "json"])) as { pods: { name: string }[] };
      assert.ok(!st.pods.some((p) => p.name === "waypoint-0"), "the waypoint pod is still there");
      // No Gateway of that name: istio.io/use-waypoint no longer applies (Istio's rule) and the
      // call goes straight to the app, without the waypoint's XFCC.
      await eventually("a direct call without the waypoint", 20_000, async () => {
        const r = await curl(`${ECHO}/after`);
        return (
          r.status === 200 && (JSON.parse(r.body) as Echoed).headers["x-forwarded-client-cert"] === undefined
        );
      });
    });
  },
);
