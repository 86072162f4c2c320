// DestinationRules in a real waypoint, end to end: a real control plane, two real node proxies
// (loopback mode), a real `ambit waypoint` and real HTTP backends (several pods per Service, each
// its own loopback IP on node n2). Clients are curl and Node's HTTP client through the client
// pod's node proxy (SOCKS5). Shown: outlier ejection and return (requests stop reaching a failing
// endpoint, /config_dump shows it ejected, it gets traffic again after baseEjectionTime, the state
// survives an unrelated config push), connection-pool overflow (503 UO with Envoy's body, access
// log flag and metric, while other Services keep being served), consistent hash by header and by
// generated cookie, LEAST_REQUEST steering away from a slow endpoint, and subsets through a
// VirtualService (an undefined subset answers 503 NC).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as http from "node:http";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { until } from "../support/control-plane.js";
import { socksForwarder, type NodeProcess } from "../support/node-proxy.js";
import { counter, meshPrelude, WaypointMesh } from "../support/waypoint-mesh.js";

const run = promisify(execFile);

// This file's loopback ranges: pods 127.0.33.x, admin hosts 127.0.10.31-33, VIPs 10.96.31.x.
const CLIENT_IP = "127.0.33.200";
const WAYPOINT_IP = "127.0.33.201";
const NS = "dest";
const DOMAIN = "svc.cluster.local";

interface PodSpec {
  name: string;
  app: string;
  ip: string;
  labels?: Record<string, string>;
}

const PODS: PodSpec[] = [
  { name: "od-1", app: "od", ip: "127.0.33.1" },
  { name: "od-2", app: "od", ip: "127.0.33.2" },
  { name: "od-3", app: "od", ip: "127.0.33.3" },
  { name: "pool-1", app: "pool", ip: "127.0.33.11" },
  { name: "hash-1", app: "hash", ip: "127.0.33.21" },
  { name: "hash-2", app: "hash", ip: "127.0.33.22" },
  { name: "hash-3", app: "hash", ip: "127.0.33.23" },
  { name: "lr-1", app: "lr", ip: "127.0.33.31" },
  { name: "lr-2", app: "lr", ip: "127.0.33.32" },
  { name: "lr-3", app: "lr", ip: "127.0.33.33" },
  { name: "sub-v1", app: "sub", ip: "127.0.33.41", labels: { version: "v1" } },
  { name: "sub-v2a", app: "sub", ip: "127.0.33.42", labels: { version: "v2" } },
  { name: "sub-v2b", app: "sub", ip: "127.0.33.43", labels: { version: "v2" } },
];

const VIPS: Record<string, string> = {
  od: "10.96.31.10",
  pool: "10.96.31.11",
  hash: "10.96.31.12",
  lr: "10.96.31.13",
  sub: "10.96.31.14",
};

const host = (svc: string): string => `${svc}.${NS}.${DOMAIN}`;
const cluster = (svc: string, port = 80, subset = ""): string => `outbound|${port}|${subset}|${host(svc)}`;

const podYaml = (p: PodSpec): string => `---
apiVersion: v1
kind: Pod
metadata:
  name: ${p.name}
  namespace: ${NS}
  labels: ${JSON.stringify({ app: p.app, ...(p.labels ?? {}) })}
spec: { nodeName: n2, serviceAccountName: ${p.app} }
status: { podIP: ${p.ip} }
`;

const serviceYaml = (svc: string, ports: number[] = [80]): string => `---
apiVersion: v1
kind: Service
metadata: { name: ${svc}, namespace: ${NS}, labels: { istio.io/use-waypoint: waypoint } }
spec:
  selector: { app: ${svc} }
  clusterIP: ${VIPS[svc]}
  ports: ${JSON.stringify(ports.map((p) => ({ name: `http-${p}`, port: p, targetPort: 8080 })))}
`;

const MESH = `${meshPrelude({ namespace: NS, clientIp: CLIENT_IP, waypointIp: WAYPOINT_IP, waypointVip: "10.96.31.2" })}${PODS.map(podYaml).join("")}${serviceYaml("od")}${serviceYaml("pool")}${serviceYaml("hash", [80, 81])}${serviceYaml("lr")}${serviceYaml("sub")}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: od, namespace: ${NS} }
spec:
  host: od
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: { consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 50 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: pool, namespace: ${NS} }
spec:
  host: pool.${NS}.${DOMAIN}
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 1 }
      http: { http1MaxPendingRequests: 1, http2MaxRequests: 2 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hash, namespace: ${NS} }
spec:
  host: hash
  trafficPolicy:
    loadBalancer: { consistentHash: { httpHeaderName: x-user } }
    portLevelSettings:
      - port: { number: 81 }
        loadBalancer: { consistentHash: { httpCookie: { name: affinity, path: /, ttl: 60s } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: lr, namespace: ${NS} }
spec:
  host: lr
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: sub, namespace: ${NS} }
spec:
  host: sub
  subsets:
    - name: v1
      labels: { version: v1 }
      trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 1 } } }
    - { name: v2, labels: { version: v2 }, trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: sub, namespace: ${NS} }
spec:
  hosts: [sub]
  http:
    - match: [{ headers: { x-subset: { exact: v3 } } }]
      route: [{ destination: { host: sub, subset: v3 } }]
    - match: [{ headers: { x-subset: { exact: v1 } } }]
      route: [{ destination: { host: sub, subset: v1 } }]
    - route: [{ destination: { host: sub, subset: v2 } }]
`;

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Behaviour {
  status: number;
  delayMs: number;
}

interface ClusterDump {
  name: string;
  destinationRule: string | null;
  policy: { lb: { kind: string } };
  load: { requests: number; overflows: number };
  endpoints: {
    address: string;
    workload: string;
    inFlight: number;
    ejected: boolean;
    ejectedUntil: string | null;
  }[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("waypoint: DestinationRule load balancing, connection pools, outlier detection, subsets", () => {
  const mesh = new WaypointMesh({
    namespace: NS,
    clientIp: CLIENT_IP,
    waypointIp: WAYPOINT_IP,
    adminHosts: { n1: "127.0.10.31", n2: "127.0.10.32", waypoint: "127.0.10.33" },
    yaml: MESH,
    tmpPrefix: "ambit-wpd",
  });
  let wp: NodeProcess;
  const servers: http.Server[] = [];
  const forwarders: { port: number; close(): void }[] = [];
  /** Per pod: its behaviour and the times (ms) it was hit. */
  const pods = new Map<string, { behaviour: Behaviour; hits: number[]; connections: number }>();
  const fwd: Record<string, number> = {};

  const hits = (pod: string): number => pods.get(pod)?.hits.length ?? 0;
  const behaviour = (pod: string): Behaviour => {
    const b = pods.get(pod)?.behaviour;
    if (!b) throw new Error(`no pod ${pod}`);
    return b;
  };

  function backend(p: PodSpec): Promise<void> {
    const entry = { behaviour: { status: 200, delayMs: 0 }, hits: [] as number[], connections: 0 };
    pods.set(p.name, entry);
    const srv = http.createServer((req, res) => {
      entry.hits.push(Date.now());
      const { status, delayMs } = entry.behaviour;
      const slow = req.url?.startsWith("/slow") ? 3_000 : 0;
      req.resume();
      req.on("end", () => {
        const t = setTimeout(
          () => {
            res.writeHead(status, { "content-type": "application/json", "x-pod": p.name });
            res.end(JSON.stringify({ pod: p.name, path: req.url }));
          },
          Math.max(delayMs, slow),
        );
        res.on("close", () => clearTimeout(t));
      });
    });
    srv.keepAliveTimeout = 30_000;
    srv.on("connection", () => entry.connections++);
    servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(8080, p.ip, () => resolve());
    });
  }

  /** One request through the client pod's node proxy (a forwarder to the Service's VIP). */
  function request(svc: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
    const port = fwd[svc];
    if (port === undefined) throw new Error(`no forwarder for ${svc}`);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port, path, headers, agent: false, timeout: 20_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${svc}${path}: timed out`)));
      req.on("error", reject);
      req.end();
    });
  }

  const podOf = (r: Reply): string => String(r.headers["x-pod"] ?? "");

  async function clusters(): Promise<ClusterDump[]> {
    return (await wp.admin<{ clusters: ClusterDump[] }>("/config_dump")).clusters;
  }

  async function clusterDump(name: string): Promise<ClusterDump> {
    const c = (await clusters()).find((x) => x.name === name);
    assert.ok(c, `no cluster ${name} in /config_dump`);
    return c;
  }

  before(async () => {
    await mesh.start(async () => {
      await Promise.all(PODS.map(backend));
    });
    ({ wp } = mesh);
    const targets: [string, number][] = [
      ["od", 80],
      ["pool", 80],
      ["hash", 80],
      ["hash81", 81],
      ["lr", 80],
      ["sub", 80],
    ];
    for (const [name, port] of targets) {
      const vip = VIPS[name.replace(/\d+$/, "")] ?? "";
      const f = await socksForwarder({ host: CLIENT_IP, port: 15001 }, { ip: vip, port }, CLIENT_IP);
      forwarders.push(f);
      fwd[name] = f.port;
    }
  });

  after(async () => {
    for (const f of forwarders) f.close();
    await mesh.stop(() => {
      for (const s of servers) {
        s.closeAllConnections();
        s.close();
      }
    });
  });

  test("outlier detection: a failing endpoint is ejected (no traffic, shown in /config_dump), survives a push, and returns after baseEjectionTime", async (t) => {
    // Round robin over three healthy endpoints first.
    for (let i = 0; i < 9; i++) assert.equal((await request("od", "/warm")).status, 200);
    for (const p of ["od-1", "od-2", "od-3"]) assert.ok(hits(p) >= 2, `${p} got ${hits(p)} of 9`);

    // od-2 starts failing: three consecutive 500s eject it.
    behaviour("od-2").status = 500;
    let failures = 0;
    for (let i = 0; i < 30 && failures < 3; i++)
      if ((await request("od", "/fail")).status === 500) failures++;
    assert.equal(failures, 3);
    const dump = await clusterDump(cluster("od"));
    assert.equal(dump.destinationRule, `${NS}/od`);
    const od2 = dump.endpoints.find((e) => e.workload === `${NS}/od-2`);
    assert.ok(od2?.ejected && od2.ejectedUntil, JSON.stringify(dump, null, 2));
    const until2 = Date.parse(od2.ejectedUntil);
    assert.ok(until2 > Date.now(), `ejected until ${od2.ejectedUntil}`);
    assert.deepEqual(
      dump.endpoints.filter((e) => e.ejected).map((e) => e.workload),
      [`${NS}/od-2`],
    );
    await until(() => wp.logs().includes("outlier detection ejected an endpoint"));
    assert.ok(
      counter(await wp.metrics(), "ambit_waypoint_outlier_ejections_total", {
        cluster: cluster("od"),
        reason: "consecutive5xx",
      }) >= 1,
    );

    // While ejected: every request is answered by the other two.
    const before2 = hits("od-2");
    let served = 0;
    while (Date.now() < until2 - 500 && served < 10) {
      const r = await request("od", "/while-ejected");
      assert.equal(r.status, 200, r.body);
      assert.notEqual(podOf(r), "od-2");
      served++;
    }
    assert.ok(served >= 3, `only ${served} requests in the ejection window`);
    assert.equal(hits("od-2"), before2);
    t.diagnostic(`${served} requests while od-2 was ejected, none reached it`);

    // An unrelated config push keeps the cluster's state (the ejection is still there).
    await mesh.apply(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: unrelated, namespace: ${NS} }
spec: { host: nothing.${NS}.${DOMAIN}, trafficPolicy: { loadBalancer: { simple: RANDOM } } }
`,
      "unrelated",
    );
    const pushed = async (): Promise<boolean> =>
      (await wp.admin<{ resources: string[] }>("/config_dump")).resources.includes(
        `DestinationRule/${NS}/unrelated`,
      );
    for (let i = 0; i < 100 && !(await pushed()); i++) await sleep(50);
    assert.ok(await pushed(), "the unrelated DestinationRule was not pushed");
    if (Date.now() < until2 - 300) {
      const still = (await clusterDump(cluster("od"))).endpoints.find((e) => e.workload === `${NS}/od-2`);
      assert.equal(still?.ejected, true, "a push reset the ejection");
      assert.equal(still?.ejectedUntil, od2.ejectedUntil);
      t.diagnostic("after an unrelated push od-2 is still ejected until the same time");
    } else {
      t.diagnostic("the push took longer than the ejection: state-kept check skipped (unit-tested)");
    }

    // od-2 recovers; after the ejection time it gets traffic again.
    behaviour("od-2").status = 200;
    const wait = until2 - Date.now() + 100;
    if (wait > 0) await sleep(wait);
    const back = await clusterDump(cluster("od"));
    assert.equal(back.endpoints.find((e) => e.workload === `${NS}/od-2`)?.ejected, false);
    for (let i = 0; i < 12 && hits("od-2") === before2; i++)
      assert.equal((await request("od", "/after")).status, 200);
    assert.ok(hits("od-2") > before2, "od-2 got no traffic after its ejection ended");
    await until(() => wp.logs().includes("ejected endpoint returned to the cluster"));
    assert.ok(
      counter(await wp.metrics(), "ambit_waypoint_outlier_returns_total", { cluster: cluster("od") }) >= 1,
    );
  });

  test("connection pool overflow: 503 UO with Envoy's body, flag and metric, while other Services keep being served", async (t) => {
    // maxConnections 1 + http1MaxPendingRequests 1: two requests may be in flight, the rest overflow.
    const slow = Array.from({ length: 6 }, () => request("pool", "/slow"));
    await sleep(400);
    // Another Service through the same waypoint is unaffected.
    const other = await request("od", "/meanwhile");
    assert.equal(other.status, 200);
    const replies = await Promise.all(slow);
    const ok = replies.filter((r) => r.status === 200);
    const overflow = replies.filter((r) => r.status === 503);
    assert.equal(ok.length + overflow.length, 6, JSON.stringify(replies.map((r) => r.status)));
    t.diagnostic(
      `6 concurrent requests, 2 allowed in flight: ${ok.length} served, ${overflow.length} overflowed`,
    );
    assert.ok(ok.length >= 1 && ok.length <= 3, `${ok.length} succeeded`);
    assert.ok(overflow.length >= 3, `${overflow.length} overflowed`);
    for (const r of overflow) {
      assert.equal(
        r.body,
        "upstream connect error or disconnect/reset before headers. reset reason: overflow",
      );
      assert.equal(r.headers["x-envoy-overloaded"], "true");
    }
    await until(
      () =>
        wp
          .accessLog()
          .filter((l) => l.event === "request" && l.path === "/slow" && String(l.flags).includes("UO"))
          .length >= overflow.length,
    );
    const m = await wp.metrics();
    assert.ok(
      counter(m, "ambit_waypoint_upstream_overflow_total", { cluster: cluster("pool") }) >= overflow.length,
      m,
    );
    assert.ok(
      counter(m, "istio_requests_total", { response_flags: "UO", destination_service: host("pool") }) >=
        overflow.length,
    );
    // The slots are given back: the next request goes through.
    assert.equal((await request("pool", "/after")).status, 200);
    const d = await clusterDump(cluster("pool"));
    assert.equal(d.load.requests, 0);
    assert.ok(d.load.overflows >= overflow.length);
  });

  test("consistent hash: one x-user header value stays on one endpoint for 50 requests, different values spread; a generated cookie sticks", async () => {
    const alice = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const r = await request("hash", `/h/${i}`, { "x-user": "alice" });
      assert.equal(r.status, 200);
      alice.add(podOf(r));
    }
    assert.equal(alice.size, 1, `alice went to ${[...alice].join(", ")}`);
    const spread = new Set<string>();
    for (let i = 0; i < 24; i++) spread.add(podOf(await request("hash", "/k", { "x-user": `user-${i}` })));
    assert.ok(spread.size >= 2, `24 keys all went to ${[...spread].join(", ")}`);
    assert.equal((await clusterDump(cluster("hash"))).policy.lb.kind, "RING_HASH");

    // Port 81: the port-level policy hashes on a cookie with a ttl, generated when absent.
    const first = await request("hash81", "/c");
    assert.equal(first.status, 200);
    const setCookie = first.headers["set-cookie"]?.[0] ?? "";
    assert.match(setCookie, /^affinity="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
    const cookie = setCookie.split(";")[0] ?? "";
    const sticky = new Set<string>([podOf(first)]);
    for (let i = 0; i < 20; i++) {
      const r = await request("hash81", "/c", { cookie });
      assert.equal(r.headers["set-cookie"], undefined);
      sticky.add(podOf(r));
    }
    assert.equal(sticky.size, 1, `the cookie went to ${[...sticky].join(", ")}`);
  });

  test("LEAST_REQUEST: a slow endpoint gets far less than its round-robin share", async (t) => {
    behaviour("lr-1").delayMs = 2_000;
    const served = new Map<string, number>();
    let next = 0;
    const total = 90;
    const worker = async (): Promise<void> => {
      while (next < total) {
        next++;
        const r = await request("lr", "/lr");
        assert.equal(r.status, 200);
        served.set(podOf(r), (served.get(podOf(r)) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    const slowShare = (served.get("lr-1") ?? 0) / total;
    t.diagnostic(`LEAST_REQUEST with lr-1 slow (2 s): ${JSON.stringify(Object.fromEntries(served))}`);
    // Round robin would give it a third; power of two choices about a ninth.
    assert.ok(slowShare < 0.25, `lr-1 got ${(slowShare * 100).toFixed(0)}%: ${JSON.stringify([...served])}`);
    assert.ok((served.get("lr-2") ?? 0) > 0 && (served.get("lr-3") ?? 0) > 0);
    assert.equal((await clusterDump(cluster("lr"))).policy.lb.kind, "LEAST_REQUEST");
  });

  test("subsets: a VirtualService route to a subset reaches only its pods, with the subset's policy; an undefined subset is 503 NC", async () => {
    const conns = (...names: string[]): number =>
      names.reduce((n, p) => n + (pods.get(p)?.connections ?? 0), 0);
    const v2Conns = conns("sub-v2a", "sub-v2b");
    const v2 = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await request("sub", "/s");
      assert.equal(r.status, 200, r.body);
      v2.add(podOf(r));
    }
    assert.deepEqual([...v2].sort(), ["sub-v2a", "sub-v2b"]);
    // v2 keeps its upstream connections alive; v1's policy allows one request per connection.
    const v2New = conns("sub-v2a", "sub-v2b") - v2Conns;
    assert.ok(v2New <= 10, `v2: ${v2New} connections for 20 requests`);
    const v1Conns = conns("sub-v1");
    for (let i = 0; i < 6; i++)
      assert.equal(podOf(await request("sub", "/s", { "x-subset": "v1" })), "sub-v1");
    assert.equal(conns("sub-v1") - v1Conns, 6, "maxRequestsPerConnection 1: a connection per request");

    const nc = await request("sub", "/nc", { "x-subset": "v3" });
    assert.equal(nc.status, 503);
    await until(() =>
      wp.accessLog().some((l) => l.event === "request" && l.path === "/nc" && String(l.flags).includes("NC")),
    );
    assert.ok(
      /subset \\?"v3\\?" of sub\.dest\.svc\.cluster\.local is defined by no DestinationRule/.test(wp.logs()),
      "no warning names the undefined subset",
    );
    const names = (await clusters()).map((c) => c.name);
    assert.ok(
      names.includes(cluster("sub", 80, "v2")) && names.includes(cluster("sub", 80, "v1")),
      names.join(),
    );

    // curl agrees (a real client end to end through the same path).
    const { stdout } = await run("curl", [
      "-sS",
      "--max-time",
      "15",
      "--socks5",
      `${CLIENT_IP}:15001`,
      "-H",
      "x-subset: v1",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %header{x-pod}",
      `http://${VIPS.sub}/curl`,
    ]);
    assert.equal(stdout.trim(), "200 sub-v1");
  });
});
