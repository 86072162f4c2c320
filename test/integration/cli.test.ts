// The `ambit` executable as users and other tools call it: exit codes, output contracts, errors.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { repoRoot, runAmbit } from "../support/repo.js";

const fixture = (name: string): string => join(repoRoot(), "test", "fixtures", name);
const bookinfo = join(repoRoot(), "examples", "bookinfo");
const tmp = mkdtempSync(join(tmpdir(), "ambit-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, content: unknown): string => {
  const p = join(tmp, name);
  writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
  return p;
};

describe("ambit --help", () => {
  test("lists the commands and exits 0", async () => {
    const r = await runAmbit(["--help"]);
    assert.equal(r.code, 0);
    for (const cmd of ["validate", "authz", "demo", "lab"])
      assert.match(r.stdout, new RegExp(`^\\s+${cmd}\\b`, "m"));
  });
  test("an unknown flag is a usage error with exit 2", async () => {
    const r = await runAmbit(["validate", "--no-such-flag"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /AMBIT_E_USAGE/);
  });
});

describe("ambit validate", () => {
  test("reports all three mistakes with field paths and exits non-zero", async () => {
    const r = await runAmbit(["validate", "-f", fixture("three-mistakes.yaml")]);
    assert.equal(r.code, 1);
    const lines = r.stderr.split("\n").filter((l) => l.includes("[AMBIT_E_"));
    assert.equal(lines.length, 3, r.stderr);
    const expect: [string, string][] = [
      ["spec.action", "AMBIT_E_INVALID_VALUE"],
      ["spec.rules[0].from[0].source.principals", "AMBIT_E_INVALID_TYPE"],
      ["spec.rules[0].to[0].operation.method", "AMBIT_E_UNKNOWN_FIELD"],
    ];
    for (const [path, code] of expect) {
      const line = lines.find((l) => l.includes(` ${path}:`));
      assert.ok(line, `no problem reported at ${path}:\n${r.stderr}`);
      assert.ok(line.includes(`[${code}]`), line);
      assert.ok(line.includes("AuthorizationPolicy foo/three-mistakes"), line);
      assert.ok(line.includes("three-mistakes.yaml:"), line);
    }
  });

  test("a valid directory prints a one-line summary and exits 0", async () => {
    const r = await runAmbit(["validate", "-f", bookinfo]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.trim().split("\n");
    assert.equal(out.length, 1);
    assert.match(out[0] ?? "", /^valid: \d+ resources/);
  });

  test("problems across several files are all reported; duplicates across files are caught", async () => {
    const a = write("a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: foo\n");
    const b = write("b.json", [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "foo" } },
      { apiVersion: "v1", kind: "Bogus", metadata: { name: "x" } },
    ]);
    const r = await runAmbit(["validate", "-f", a, "-f", b]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /AMBIT_E_DUPLICATE/);
    assert.match(r.stderr, /AMBIT_E_UNKNOWN_KIND/);
  });

  test("an unreadable path is reported, not thrown", async () => {
    const r = await runAmbit(["validate", "-f", join(tmp, "does-not-exist.yaml")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does-not-exist\.yaml.*AMBIT_E_FILE_READ/);
  });

  test("reads from stdin with -f -", async () => {
    const r = await runAmbit(["validate", "-f", "-"], {
      input: "apiVersion: v1\nkind: Namespace\nmetadata: {name: bar}\n",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /valid: 1 resource \(1 Namespace\)/);
  });
});

describe("ambit authz check", () => {
  test("text output: first line is exactly the decision, then policy and reason", async () => {
    const r = await runAmbit(["authz", "check", "-f", bookinfo, "--request", fixture("request-l7.json")]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.equal(lines[0], "DENY");
    assert.match(r.stdout, /bookinfo\/no-delete/);
  });

  test("-o json gives decision, policy and reason", async () => {
    const r = await runAmbit([
      "authz",
      "check",
      "-f",
      bookinfo,
      "--request",
      fixture("request-l7.json"),
      "-o",
      "json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { decision: string; policy: string | null; reason: string };
    assert.deepEqual(Object.keys(out).sort(), ["decision", "policy", "reason"]);
    assert.equal(out.decision, "DENY");
    assert.equal(out.policy, "bookinfo/no-delete");
    assert.ok(out.reason.length > 0);
  });

  test("--layer defaults to L4 without http; --layer L4 ignores HTTP attributes", async () => {
    const policies = write("p.json", [
      {
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: "get-only", namespace: "foo" },
        spec: { rules: [{ to: [{ operation: { methods: ["GET"] } }] }] },
      },
    ]);
    const base = {
      destination: { namespace: "foo", workloadLabels: {}, ip: "10.0.0.1", port: 80, serviceAccount: "a" },
      source: { principal: "cluster.local/ns/bar/sa/b", namespace: "bar", ip: "10.0.0.2" },
    };
    const l4 = await runAmbit([
      "authz",
      "check",
      "-f",
      policies,
      "--request",
      write("r1.json", { ...base, http: null }),
      "-o",
      "json",
    ]);
    assert.equal(
      (JSON.parse(l4.stdout) as { decision: string }).decision,
      "DENY",
      "ztunnel drops the HTTP-only ALLOW rule",
    );
    const req = write("r2.json", {
      ...base,
      http: { method: "GET", path: "/", host: "foo", headers: {}, jwt: null },
    });
    const l7 = await runAmbit(["authz", "check", "-f", policies, "--request", req, "-o", "json"]);
    assert.equal((JSON.parse(l7.stdout) as { decision: string }).decision, "ALLOW");
    const forced = await runAmbit([
      "authz",
      "check",
      "-f",
      policies,
      "--request",
      req,
      "--layer",
      "L4",
      "-o",
      "json",
    ]);
    assert.equal((JSON.parse(forced.stdout) as { decision: string }).decision, "DENY");
  });

  test("--root-namespace makes a namespace's policies mesh-wide", async () => {
    const policies = write(
      "root.yaml",
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: mesh-root}\nspec: {action: DENY, rules: [{}]}\n",
    );
    const req = write("r3.json", {
      destination: { namespace: "foo", workloadLabels: {}, ip: "10.0.0.1", port: 80, serviceAccount: "a" },
      source: { principal: "cluster.local/ns/bar/sa/b", namespace: "bar", ip: "10.0.0.2" },
      http: null,
    });
    const dflt = await runAmbit(["authz", "check", "-f", policies, "--request", req]);
    assert.equal(dflt.stdout.split("\n")[0], "ALLOW");
    const root = await runAmbit([
      "authz",
      "check",
      "-f",
      policies,
      "--request",
      req,
      "--root-namespace",
      "mesh-root",
    ]);
    assert.equal(root.stdout.split("\n")[0], "DENY");
  });

  test("an invalid request exits 2 naming the field", async () => {
    const req = write("bad-req.json", {
      destination: { namespace: "foo", workloadLabels: {}, ip: "not-an-ip", port: 80, serviceAccount: "a" },
      source: { principal: null, ip: "10.0.0.2" },
      http: null,
    });
    const r = await runAmbit(["authz", "check", "-f", bookinfo, "--request", req]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /destination\.ip.*AMBIT_E_INVALID_REQUEST/);
    assert.equal(r.stdout, "");
  });

  test("invalid policies exit 2 with the validation errors", async () => {
    const r = await runAmbit([
      "authz",
      "check",
      "-f",
      fixture("three-mistakes.yaml"),
      "--request",
      fixture("request-l7.json"),
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.split("\n").filter((l) => l.includes("[AMBIT_E_")).length, 3);
  });

  test("a request that is not JSON exits 2", async () => {
    const r = await runAmbit(["authz", "check", "-f", bookinfo, "--request", write("x.json", "{nope")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /AMBIT_E_PARSE/);
  });
});
