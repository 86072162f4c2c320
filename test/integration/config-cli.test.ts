// `ambit apply / get / delete` against a real control plane process: kubectl-style names and
// output, all-or-nothing apply, NotFound, admin auth, and crash safety of the stored files.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { startControlPlaneProcess, type ControlPlaneProcess } from "../support/control-plane.js";
import { runAmbit } from "../support/repo.js";

const POLICIES = `# the user's own comments and ordering
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: allow-orders
  namespace: shop
  labels: { team: payments }
  annotations: { owner: "payments@example.com" }
spec:
  selector: { matchLabels: { app: payments } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]
      to: [{ operation: { methods: ["GET", "POST"], paths: ["/pay/*"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: shop }
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web-audit, namespace: web }
spec:
  action: AUDIT
  rules: [{ to: [{ operation: { ports: ["8080"] } }] }]
---
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio.io/dataplane-mode: ambient } }
`;

const userDocs = (text: string): Record<string, unknown>[] =>
  parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);

const manyPolicies = (n: number): string =>
  Array.from(
    { length: n },
    (_, i) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: bulk-${i}, namespace: ns-${i % 7} }
spec:
  selector: { matchLabels: { app: app-${i} } }
  rules: [{ from: [{ source: { namespaces: ["team-${i}"] } }] }]
`,
  ).join("---\n");

describe("ambit apply / get / delete (real control plane)", () => {
  const state = mkdtempSync(join(tmpdir(), "ambit-cfg-"));
  const work = mkdtempSync(join(tmpdir(), "ambit-cfg-work-"));
  let cp: ControlPlaneProcess;
  const admin = (): string[] => ["--control-plane", cp.adminUrl, "--state-dir", state];
  const ambit = (args: string[], input?: string) =>
    runAmbit([...args, ...admin()], input !== undefined ? { input } : {});
  const token = (): string => readFileSync(join(state, "admin-token"), "utf8").trim();
  const api = async (method: string, path: string, body?: unknown, auth: string | null = token()) => {
    const res = await fetch(new URL(path, cp.adminUrl), {
      method,
      headers: {
        ...(auth !== null ? { authorization: `Bearer ${auth}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const file = (name: string, text: string): string => {
    const p = join(work, name);
    writeFileSync(p, text);
    return p;
  };

  before(async () => {
    cp = await startControlPlaneProcess(state);
  });
  after(async () => {
    await cp.stop();
    rmSync(state, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  test("apply prints kubectl-style lines; re-applying is unchanged", async () => {
    const f = file("policies.yaml", POLICIES);
    const r = await ambit(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr + cp.logs());
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "authorizationpolicy.security.istio.io/allow-orders created",
      "authorizationpolicy.security.istio.io/deny-all created",
      "authorizationpolicy.security.istio.io/web-audit created",
      "namespace/shop created",
    ]);
    const again = await ambit(["apply", "-f", "-"], POLICIES);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /authorizationpolicy\.security\.istio\.io\/allow-orders unchanged/);
    assert.ok(!again.stdout.includes("created"));
    // One file per resource under DIR/config.
    assert.ok(
      readdirSync(join(state, "config")).includes("authorizationpolicy_shop_allow-orders.yaml"),
      readdirSync(join(state, "config")).join(","),
    );
  });

  test("get -o yaml round-trips the user's documents", async () => {
    const [orders, , , ns] = userDocs(POLICIES);
    const one = await ambit(["get", "ap", "allow-orders", "-n", "shop", "-o", "yaml"]);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(parse(one.stdout), orders);
    const nsGet = await ambit(["get", "namespace", "shop", "-o", "yaml", "-n", "ignored"]);
    assert.equal(nsGet.code, 0, nsGet.stderr);
    assert.deepEqual(parse(nsGet.stdout), ns);
    const list = await ambit(["get", "authorizationpolicies", "-A", "-o", "yaml"]);
    const doc = parse(list.stdout) as { kind: string; items: unknown[] };
    assert.equal(doc.kind, "List");
    assert.deepEqual(doc.items, userDocs(POLICIES).slice(0, 3));
  });

  test("kubectl kind forms, -n, -A, default namespace", async () => {
    for (const kind of [
      "ap",
      "AuthorizationPolicies",
      "authorizationpolicy",
      "authorizationpolicy.security.istio.io",
    ]) {
      const r = await ambit(["get", kind, "-n", "shop"]);
      assert.equal(r.code, 0, `${kind}: ${r.stderr}`);
      const lines = r.stdout.trim().split("\n");
      assert.match(lines[0] ?? "", /^NAME\s+STATUS\s+AGE$/, kind);
      assert.deepEqual(
        lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2)),
        [
          ["allow-orders", "Accepted"],
          ["deny-all", "Accepted"],
        ],
      );
    }
    const all = await ambit(["get", "ap", "-A"]);
    const lines = all.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^NAMESPACE\s+NAME\s+STATUS\s+AGE$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2)),
      [
        ["shop", "allow-orders"],
        ["shop", "deny-all"],
        ["web", "web-audit"],
      ],
    );
    const def = await ambit(["get", "ap"]);
    assert.equal(def.code, 0);
    assert.equal(def.stdout, "");
    assert.match(def.stderr, /No resources found in default namespace/);
    const unknown = await ambit(["get", "widgets"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /"widgets".*AuthorizationPolicy.*AMBIT_E_UNKNOWN_KIND/);
    const bad = await api("GET", "/v1/resources?kind=widgets");
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.message), /widgets.*PeerAuthentication/);
  });

  test("-o json and -o wide", async () => {
    const json = await ambit(["get", "ap", "-n", "web", "-o", "json"]);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { kind: string; items: unknown[] };
    assert.equal(doc.kind, "List");
    assert.deepEqual(doc.items, [userDocs(POLICIES)[2]]);
    const wide = await ambit(["get", "ap", "-n", "shop", "-o", "wide"]);
    const lines = wide.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^NAME\s+STATUS\s+GENERATION\s+ACTION\s+RULES\s+AGE$/);
    // deny-all omits action: the defaulted ALLOW is shown, and zero rules.
    assert.match(lines[2] ?? "", /^deny-all\s+Accepted\s+1\s+ALLOW\s+0\s+\d+s$/);
    const r = await api("GET", "/v1/resources?kind=ap&namespace=shop&name=allow-orders");
    const [res] = r.body.resources as { status: { phase: string; generation: number; acks: unknown[] } }[];
    assert.equal(res?.status.phase, "accepted");
    assert.equal(res?.status.generation, 1);
    assert.deepEqual(res?.status.acks, []);
  });

  test("an apply with one invalid resource among valid ones changes nothing and names it", async () => {
    const bad = `${POLICIES.replace("deny-all", "deny-all-2").replace("web-audit", "web-audit-2")}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: broken, namespace: shop }
spec:
  rules: [{ from: [{ source: { principalz: ["x"] } }] }]
`;
    const before_ = await api("GET", "/v1/resources?kind=ap");
    const r = await ambit(["apply", "-f", file("bad.yaml", bad)]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /AuthorizationPolicy shop\/broken: spec\.rules\[0\]\.from\[0\]\.source\.principalz: unknown field/,
    );
    assert.match(r.stderr, /nothing was applied \[AMBIT_E_CONFIG_REJECTED\]/);
    assert.equal(r.stdout, "");
    const after_ = await api("GET", "/v1/resources?kind=ap");
    assert.deepEqual(after_.body, before_.body);
    const direct = await api("POST", "/v1/apply", { files: [{ file: "x.yaml", text: bad }] });
    assert.equal(direct.status, 422);
    assert.equal(direct.body.code, "AMBIT_E_CONFIG_REJECTED");
    assert.equal((direct.body.problems as unknown[]).length, 1);
  });

  test("delete by file, by KIND NAME, NotFound and --ignore-not-found", async () => {
    const f = file("two.yaml", POLICIES.split("---")[2] ?? "");
    const byFile = await ambit(["delete", "-f", f]);
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.equal(byFile.stdout.trim(), 'authorizationpolicy.security.istio.io "web-audit" deleted');
    const byName = await ambit(["delete", "ap", "deny-all", "-n", "shop"]);
    assert.equal(byName.code, 0, byName.stderr);
    assert.equal(byName.stdout.trim(), 'authorizationpolicy.security.istio.io "deny-all" deleted');
    const missing = await ambit(["delete", "authorizationpolicy", "deny-all", "-n", "shop"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NotFound.*"deny-all" not found.*AMBIT_E_NOT_FOUND/);
    const ignored = await ambit(["delete", "ap", "deny-all", "-n", "shop", "--ignore-not-found"]);
    assert.equal(ignored.code, 0, ignored.stderr);
    const getMissing = await ambit(["get", "ap", "deny-all", "-n", "shop"]);
    assert.equal(getMissing.code, 1);
    assert.match(getMissing.stderr, /NotFound/);
    const rest = await ambit(["get", "ap", "-A"]);
    assert.deepEqual(
      rest.stdout
        .trim()
        .split("\n")
        .slice(1)
        .map((l) => l.split(/\s+/)[1]),
      ["allow-orders"],
    );
  });

  test("anonymous or wrong-token admin calls are refused", async () => {
    for (const [method, path, body] of [
      ["POST", "/v1/apply", { files: [{ file: "x", text: POLICIES }] }],
      ["POST", "/v1/delete", { refs: [{ kind: "ap", namespace: "shop", name: "allow-orders" }] }],
      ["GET", "/v1/resources?kind=ap", undefined],
    ] as const) {
      for (const auth of [null, "not-the-token"]) {
        const r = await api(method, path, body, auth);
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(r.body.code, "AMBIT_E_UNAUTHENTICATED");
      }
    }
    const stillThere = await api("GET", "/v1/resources?kind=ap&namespace=shop");
    assert.equal((stillThere.body.resources as unknown[]).length, 1);
  });

  test("an invalid edit on disk is reported as rejected while the last accepted version serves", async () => {
    const own = join(state, "config", "authorizationpolicy_shop_allow-orders.yaml");
    const good = readFileSync(own, "utf8");
    writeFileSync(own, good.replace("action: ALLOW", "action: PERMIT"));
    let lines: string[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await ambit(["get", "ap", "-n", "shop"]);
      lines = r.stdout.trim().split("\n");
      if (/Rejected/.test(lines[1] ?? "")) {
        assert.match(r.stderr, /still serving generation 1/);
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.match(lines[1] ?? "", /^allow-orders\s+Rejected/);
    const served = await ambit(["get", "ap", "allow-orders", "-n", "shop", "-o", "yaml"]);
    assert.deepEqual(parse(served.stdout), userDocs(POLICIES)[0]);
    const problems = (await api("GET", "/v1/config/problems")).body.problems as { path: string }[];
    assert.deepEqual(
      problems.map((p) => p.path),
      ["spec.action"],
    );
    // Re-applying the user's version repairs the file.
    const fixed = await ambit(["apply", "-f", file("orders.yaml", POLICIES.split("---")[0] ?? "")]);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.match(fixed.stdout, /allow-orders configured/);
    assert.deepEqual((await api("GET", "/v1/config/problems")).body.problems, []);
  });

  test("kill -9 after a large apply leaves DIR/config loading cleanly", async () => {
    const text = manyPolicies(500);
    const r = await ambit(["apply", "-f", "-"], text);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 500);
    // Acknowledged writes are durable: kill right after the response.
    await cp.stop("SIGKILL");
    cp = await startControlPlaneProcess(state);
    assert.deepEqual((await api("GET", "/v1/config/problems")).body.problems, []);
    let all = await api("GET", "/v1/resources?kind=ap");
    assert.equal((all.body.resources as unknown[]).length, 501);

    // A kill in the middle of a (re)apply leaves each file either old or new, never torn.
    const changed = text.replace(/app-(\d+)/g, "svc-$1");
    const inFlight = api("POST", "/v1/apply", { files: [{ file: "bulk.yaml", text: changed }] }).catch(
      () => undefined,
    );
    await new Promise((res) => setTimeout(res, 40));
    await cp.stop("SIGKILL");
    await inFlight;
    cp = await startControlPlaneProcess(state);
    assert.deepEqual((await api("GET", "/v1/config/problems")).body.problems, []);
    all = await api("GET", "/v1/resources?kind=ap");
    const items = all.body.resources as { name: string; status: { phase: string } }[];
    assert.equal(items.length, 501);
    assert.ok(items.every((i) => i.status.phase === "accepted"));
    const getAll = await ambit(["get", "ap", "-A"]);
    assert.equal(getAll.code, 0, getAll.stderr);
    assert.equal(getAll.stdout.trim().split("\n").length, 502);
    // Every visible file parses on its own.
    const dir = join(state, "config");
    for (const f of readdirSync(dir).filter((x) => !x.startsWith("."))) {
      assert.doesNotThrow(() => parse(readFileSync(join(dir, f), "utf8")), f);
    }
  });
});
