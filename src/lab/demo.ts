// `ambit demo`: a two-node lab with a client, a frontend and a backend (tiny Node servers under
// demo/apps that know nothing of the mesh), then a narrated walk through what the mesh does, each
// step checked: plain HTTP works unchanged across nodes, the receiving node proxy logs the
// caller's SPIFFE identity, the underlay carries only TLS on 15008, a policy denies and then
// allows, a waypoint enforces HTTP-aware policy on the backend, and revoking the client's identity
// cuts its open connection.
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { packageRoot } from "../core/paths.js";
import {
  controlPlaneCli,
  labApply,
  labDown,
  labRun,
  labUp,
  readState,
  UNDERLAY_BRIDGE,
  UNDERLAY_NETNS,
  type LabState,
} from "./lab.js";
import { nsExec, sh } from "./sys.js";
import { labApplyWithWaypoints } from "./waypoints.js";

export interface DemoOptions {
  keep: boolean;
  say: (line: string) => void;
}

interface Step {
  title: string;
  ok: boolean;
  detail: string;
}

const NS = "demo";
const FRONTEND_URL = `http://frontend.${NS}.svc.cluster.local:8080/`;
const BACKEND_URL = `http://backend.${NS}.svc.cluster.local:9090/`;

function podNetns(s: LabState, name: string): string {
  const p = s.pods.find((x) => x.name === name && x.namespace === NS);
  if (!p) throw new Error(`demo pod ${name} missing`);
  return p.netns;
}

async function curl(s: LabState, from: string, url: string): Promise<{ ok: boolean; body: string }> {
  return nsExec(podNetns(s, from), ["curl", "-sS", "--max-time", "5", url]).then(
    (body) => ({ ok: true, body }),
    (err: unknown) => ({ ok: false, body: (err as Error).message }),
  );
}

/** Waits until `probe` holds, bounded; returns its last value. */
async function eventually<T>(
  timeoutMs: number,
  probe: () => Promise<T>,
  done: (v: T) => boolean,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v) || Date.now() >= deadline) return v;
    await sleep(250);
  }
}

/** Packets seen on the underlay bridge while `during` runs (tcpdump, text with payloads). */
export async function captureUnderlay(
  dir: string,
  during: () => Promise<void>,
): Promise<{ headers: string; ascii: string }> {
  const file = join(dir, "underlay.pcap");
  const dump = spawn(
    "ip",
    [
      "netns",
      "exec",
      UNDERLAY_NETNS,
      "tcpdump",
      "--immediate-mode",
      "-Z",
      "root",
      "-i",
      UNDERLAY_BRIDGE,
      "-nn",
      "-U",
      "-s",
      "0",
      "-w",
      file,
      "tcp",
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let started = "";
  dump.stderr.on("data", (c: Buffer) => (started += c.toString()));
  await eventually(
    5_000,
    () => Promise.resolve(started),
    (v) => v.includes("listening"),
  );
  // "listening" is printed as the capture opens; give it a moment before the traffic starts.
  await sleep(1_000);
  try {
    await during();
    await sleep(500);
  } finally {
    dump.kill("SIGINT");
    await new Promise((r) => dump.once("exit", r));
  }
  const headers = await sh("tcpdump", ["-r", file, "-nn", "tcp"]).catch(() => "");
  const ascii = await sh("tcpdump", ["-r", file, "-nn", "-A", "tcp"]).catch(() => "");
  rmSync(file, { force: true });
  return { headers, ascii };
}

export async function runDemo(o: DemoOptions): Promise<boolean> {
  const { say } = o;
  const steps: Step[] = [];
  const check = (title: string, ok: boolean, detail: string): void => {
    steps.push({ title, ok, detail });
    say(`  ${ok ? "✓" : "✗"} ${title}${detail ? ` — ${detail}` : ""}`);
  };
  const apps = join(packageRoot(), "demo", "apps");
  const manifests = join(packageRoot(), "demo", "manifests");
  try {
    if (readState()) {
      say("▶ Removing the lab that is already up (the demo builds its own)");
      await labDown(() => undefined);
    }
    say(
      "▶ Building a two-node lab: a control plane and two nodes, each running `ambit node`, in network namespaces",
    );
    const { state: s0 } = await labUp(2, (l) => say(`    ${l}`));
    say(
      "▶ Deploying the sample app: client (node-1) → frontend (node-2) → backend (node-1), plain HTTP, no mesh code",
    );
    await labApply([join(manifests, "services.yaml")]);
    const node = process.execPath;
    await labRun(
      {
        name: "backend",
        namespace: NS,
        serviceAccount: "backend",
        labels: { app: "backend" },
        node: "node-1",
        mesh: true,
        command: [node, join(apps, "backend.mjs")],
      },
      (l) => say(`    ${l}`),
    );
    await labRun(
      {
        name: "frontend",
        namespace: NS,
        serviceAccount: "frontend",
        labels: { app: "frontend" },
        node: "node-2",
        mesh: true,
        command: [node, join(apps, "frontend.mjs")],
      },
      (l) => say(`    ${l}`),
    );
    await labRun(
      {
        name: "client",
        namespace: NS,
        serviceAccount: "client",
        labels: { app: "client" },
        node: "node-1",
        mesh: true,
        command: ["sleep", "86400"],
      },
      (l) => say(`    ${l}`),
    );
    const s = JSON.parse(readFileSync(join(s0.dir, "state.json"), "utf8")) as LabState;

    say("\n1. Plain HTTP between the apps works unchanged (curl in the client pod, by Service name)");
    const first = await eventually(
      20_000,
      () => curl(s, "client", FRONTEND_URL),
      (r) => r.ok && r.body.includes('"backend"'),
    );
    check(
      "client → frontend → backend across both nodes",
      first.ok && first.body.includes('"service":"backend"'),
      first.body.trim().slice(0, 160),
    );

    say(
      "\n2. The destination node proxy knows who called: its access log names the client's SPIFFE identity",
    );
    const clientId = `spiffe://cluster.local/ns/${NS}/sa/client`;
    const sawIdentity = await eventually(
      5_000,
      () => Promise.resolve(readFileSync(join(s.dir, "logs", "node-2.log"), "utf8")),
      (log) =>
        log
          .split("\n")
          .some((l) => l.includes(clientId) && l.includes("10.96.0.20") === false && l.includes(":8080")),
    );
    const line = sawIdentity.split("\n").find((l) => l.includes(clientId) && l.includes(":8080")) ?? "";
    check("node-2's access log shows the caller " + clientId, line !== "", line.slice(0, 200));

    say("\n3. On the wire between the nodes there is only mutual TLS on port 15008");
    const cap = await captureUnderlay(s.dir, async () => {
      await curl(s, "client", FRONTEND_URL);
    });
    const podLines = cap.headers.split("\n").filter((l) => /10\.244\.\d+\.\d+\.\d+ > 10\.244\./.test(l));
    const off15008 = podLines.filter((l) => !/\.15008[ :]/.test(l));
    const plaintext = /GET \/|HTTP\/1\.1/.test(cap.ascii);
    check(
      "underlay capture: pod-to-pod packets all on 15008, no plaintext HTTP",
      podLines.length > 0 && off15008.length === 0 && !plaintext,
      `${podLines.length} pod-to-pod packets, ${off15008.length} not on 15008, plaintext HTTP ${plaintext ? "FOUND" : "absent"}`,
    );

    say("\n4. An AuthorizationPolicy lets only sa/admin call the frontend: the client's next call fails");
    await labApply([join(manifests, "deny-client.yaml")]);
    const denied = await eventually(
      10_000,
      () => curl(s, "client", FRONTEND_URL),
      (r) => !r.ok,
    );
    check(
      "client → frontend refused",
      !denied.ok,
      denied.ok ? "the call still succeeded" : "connection reset by the node proxy",
    );

    say("\n5. Allowing sa/client restores the call");
    await labApply([join(manifests, "allow-client.yaml")]);
    const allowed = await eventually(
      10_000,
      () => curl(s, "client", FRONTEND_URL),
      (r) => r.ok,
    );
    check("client → frontend works again", allowed.ok, allowed.body.trim().slice(0, 120));

    say(
      "\n6. A waypoint adds HTTP-aware policy to the backend (`istio.io/use-waypoint`): only the frontend may call it, with GET",
    );
    await labApplyWithWaypoints([join(manifests, "backend-waypoint.yaml")], (l) => say(`    ${l}`));
    const frontendId = `spiffe://cluster.local/ns/${NS}/sa/frontend`;
    const via = await eventually(
      15_000,
      () => curl(s, "client", FRONTEND_URL),
      (r) => r.ok && r.body.includes(frontendId),
    );
    check(
      "client → frontend → waypoint → backend; the backend is told its caller is sa/frontend (XFCC)",
      via.ok && via.body.includes(`"identity":"${frontendId}"`),
      via.body.trim().slice(0, 200),
    );
    const direct = await eventually(
      10_000,
      () => curl(s, "client", BACKEND_URL),
      (r) => r.body.includes("RBAC: access denied"),
    );
    check(
      "client → backend directly: 403 from the waypoint's L7 policy",
      direct.body.includes("RBAC: access denied"),
      direct.body.trim().slice(0, 120),
    );

    say("\n7. Revoking the client's identity cuts its open, long-lived connection at once");
    const stream = spawn(
      "ip",
      ["netns", "exec", podNetns(s, "client"), "curl", "-sN", "--max-time", "30", `${FRONTEND_URL}ticks`],
      {
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    let ticks = 0;
    stream.stdout.on("data", (c: Buffer) => (ticks += (c.toString().match(/tick/g) ?? []).length));
    const ended = new Promise<number>((r) => stream.once("exit", () => r(Date.now())));
    await eventually(
      10_000,
      () => Promise.resolve(ticks),
      (n) => n >= 3,
    );
    const before = ticks;
    const revokedAt = Date.now();
    await controlPlaneCli(s, ["revoke", "--identity", clientId, "--reason", "ambit demo"]);
    const endedAt = await Promise.race([ended, sleep(10_000).then(() => 0)]);
    if (endedAt === 0) stream.kill("SIGKILL");
    check(
      "the streaming connection was closed after the revocation",
      before >= 3 && endedAt !== 0,
      endedAt !== 0
        ? `${before} ticks before; closed ${endedAt - revokedAt} ms after \`ambit revoke\``
        : "still open 10 s later",
    );
  } catch (err) {
    check("the demo ran to the end", false, (err as Error).message);
  } finally {
    if (o.keep) say("\n--keep: the lab stays up (`ambit lab status`, `ambit lab down`)");
    else
      await labDown(() => undefined).catch((err: unknown) =>
        say(`cleanup failed: ${(err as Error).message}`),
      );
  }
  const passed = steps.filter((x) => x.ok).length;
  say(`\nSummary: ${passed}/${steps.length} steps passed`);
  for (const st of steps) say(`  ${st.ok ? "✓" : "✗"} ${st.title}`);
  return steps.length > 0 && passed === steps.length;
}
