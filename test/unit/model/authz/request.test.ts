// parseAuthzRequest: defaults for what users may leave out, and problems with exact field paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseAuthzRequest } from "../../../../src/model/authz/index.js";
import type { AuthzRequest } from "../../../../src/model/authz/types.js";
import type { Problem } from "../../../../src/model/resources/problem.js";

const minimal = {
  destination: { namespace: "foo", ip: "10.0.0.1", port: 8080 },
  source: { principal: "cluster.local/ns/bar/sa/sleep", ip: "10.0.0.2" },
};

function ok(value: unknown): AuthzRequest {
  const r = parseAuthzRequest(value, "req.json");
  if (!r.ok) assert.fail(JSON.stringify(r.problems));
  return r.value;
}

function problems(value: unknown): Problem[] {
  const r = parseAuthzRequest(value, "req.json");
  assert.equal(r.ok, false, "expected problems");
  return r.ok ? [] : r.problems;
}

const paths = (ps: Problem[]): string[] => ps.map((p) => p.path);

void describe("defaults", () => {
  void test("a minimal request is an L4 connection with the namespace taken from the principal", () => {
    const r = ok(minimal);
    assert.equal(r.http, null);
    assert.equal(r.source.namespace, "bar");
    assert.deepEqual(r.destination.workloadLabels, {});
    assert.equal(r.destination.serviceAccount, "default");
    assert.equal(r.waypoint, undefined);
  });

  void test("a plaintext peer has no namespace unless one is given", () => {
    assert.equal(ok({ ...minimal, source: { principal: null, ip: "10.0.0.2" } }).source.namespace, null);
    assert.equal(
      ok({ ...minimal, source: { ip: "10.0.0.2" } }).source.principal,
      null,
      "principal defaults to null",
    );
  });

  void test("http: headers default to {}, jwt to null, host from the Host header", () => {
    const r = ok({ ...minimal, http: { method: "GET", path: "/", headers: { Host: "a.example.com" } } });
    assert.deepEqual(r.http, {
      method: "GET",
      path: "/",
      host: "a.example.com",
      headers: { Host: "a.example.com" },
      jwt: null,
    });
    assert.deepEqual(ok({ ...minimal, http: { method: "GET", path: "/", host: "h" } }).http?.headers, {});
  });

  void test("a jwt without claims gets iss and sub as its payload", () => {
    const r = ok({ ...minimal, http: { method: "GET", path: "/", host: "h", jwt: { iss: "i", sub: "s" } } });
    assert.deepEqual(r.http?.jwt, { iss: "i", sub: "s", claims: { iss: "i", sub: "s" } });
  });

  void test("spiffe:// is stripped from the principal; the service namespace defaults to the destination's", () => {
    const r = ok({
      ...minimal,
      destination: { ...minimal.destination, service: { name: "httpbin" } },
      source: { principal: "spiffe://cluster.local/ns/bar/sa/sleep", ip: "10.0.0.2" },
      waypoint: { name: "wp", namespace: "foo" },
    });
    assert.equal(r.source.principal, "cluster.local/ns/bar/sa/sleep");
    assert.deepEqual(r.destination.service, { name: "httpbin", namespace: "foo" });
    assert.deepEqual(r.waypoint, { name: "wp", namespace: "foo" });
  });

  void test("IPv6 addresses are accepted", () => {
    assert.equal(ok({ ...minimal, source: { principal: null, ip: "2001:db8::1" } }).source.ip, "2001:db8::1");
  });
});

void describe("problems", () => {
  void test("every problem has the request code, the file and a field path", () => {
    const ps = problems({ ...minimal, destination: { ...minimal.destination, ip: "not-an-ip" } });
    assert.deepEqual(paths(ps), ["destination.ip"]);
    assert.equal(ps[0]?.code, "AMBIT_E_INVALID_REQUEST");
    assert.equal(ps[0]?.file, "req.json");
  });

  void test("missing required fields", () => {
    assert.deepEqual(paths(problems({ destination: minimal.destination })), ["source"]);
    assert.deepEqual(paths(problems({ ...minimal, source: { principal: null } })), ["source.ip"]);
    const ps = problems({ ...minimal, destination: { namespace: "foo" } });
    assert.deepEqual(paths(ps).sort(), ["destination.ip", "destination.port"]);
    assert.match(ps[0]?.message ?? "", /required/);
  });

  void test("unknown fields are named, at any depth", () => {
    assert.deepEqual(paths(problems({ ...minimal, extra: 1 })), ["extra"]);
    assert.deepEqual(paths(problems({ ...minimal, source: { ...minimal.source, princpal: "x" } })), [
      "source.princpal",
    ]);
    assert.deepEqual(
      paths(
        problems({ ...minimal, http: { method: "GET", path: "/", jwt: { iss: "i", sub: "s", aud: "x" } } }),
      ),
      ["http.jwt.aud"],
    );
  });

  void test("wrong types and values", () => {
    assert.deepEqual(paths(problems({ ...minimal, destination: { ...minimal.destination, port: "8080" } })), [
      "destination.port",
    ]);
    assert.deepEqual(paths(problems({ ...minimal, destination: { ...minimal.destination, port: 70000 } })), [
      "destination.port",
    ]);
    assert.deepEqual(
      paths(problems({ ...minimal, destination: { ...minimal.destination, workloadLabels: { app: 1 } } })),
      ["destination.workloadLabels.app"],
    );
    assert.deepEqual(
      paths(problems({ ...minimal, http: { method: "GET", path: "/", headers: { "x-a": ["1"] } } })),
      ["http.headers.x-a"],
    );
    assert.deepEqual(paths(problems({ ...minimal, http: { method: "", path: "/" } })), ["http.method"]);
    assert.deepEqual(paths(problems({ ...minimal, http: "GET /" })), ["http"]);
  });

  void test("a principal that is not an Istio SPIFFE identity", () => {
    for (const bad of [
      "sleep",
      "cluster.local/ns/bar",
      "cluster.local/ns//sa/x",
      "td/ns/a/sa/b/extra",
      "td/xx/a/sa/b",
    ]) {
      const ps = problems({ ...minimal, source: { principal: bad, ip: "10.0.0.2" } });
      assert.deepEqual(paths(ps), ["source.principal"], bad);
    }
  });

  void test("a namespace that contradicts the principal", () => {
    assert.deepEqual(paths(problems({ ...minimal, source: { ...minimal.source, namespace: "other" } })), [
      "source.namespace",
    ]);
  });

  void test("not an object at all", () => {
    for (const v of [null, 42, "x", []]) assert.deepEqual(paths(problems(v)), [""]);
  });
});
