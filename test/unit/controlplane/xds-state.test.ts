import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  StreamState,
  VersionSet,
  type ResourceView,
  type VersionedResource,
} from "../../../src/controlplane/xds/state.js";

const T = "type.example/R";

function res(name: string, version: string): VersionedResource {
  return { name, version, resource: { typeUrl: T, value: Buffer.from(`${name}@${version}`) } };
}

function view(...rs: VersionedResource[]): ResourceView {
  return new Map([[T, new Map(rs.map((r) => [r.name, r]))]]);
}

/** Subscribe, send the diff and ACK it: the client then holds `v`. */
function synced(v: ResourceView): StreamState {
  const s = new StreamState();
  s.subscribe(T, {});
  const d = s.diff(T, v);
  assert.ok(d);
  s.settle(s.sent(d, 0).nonce);
  return s;
}

describe("VersionSet", () => {
  it("layers its own changes over a shared base and counts exactly", () => {
    const base = new Map([res("a", "1"), res("b", "1")].map((r) => [r.name, r]));
    const v = new VersionSet();
    v.adopt(base);
    assert.equal(v.size, 2);
    assert.ok(v.equals(base));
    v.set("a", "2");
    v.delete("b");
    v.set("c", "1");
    assert.deepEqual([...v.entries()].sort(), [
      ["a", "2"],
      ["c", "1"],
    ]);
    assert.equal(v.size, 2);
    assert.equal(v.get("b"), undefined);
    v.set("a", "1"); // back to the base's version: no own entry left for it
    v.set("b", "1");
    v.delete("c");
    assert.ok(v.equals(base));
    assert.equal(base.size, 2, "the base is never modified");
  });
});

describe("StreamState", () => {
  it("answers a new subscription once even when empty, then only changes", () => {
    const s = new StreamState();
    s.subscribe(T, {});
    const first = s.diff(T, view());
    assert.deepEqual(first && { r: first.resources, rm: first.removed }, { r: [], rm: [] });
    s.settle(s.sent(first!, 0).nonce);
    assert.equal(s.diff(T, view()), undefined);
    const d = s.diff(T, view(res("a", "1")));
    assert.deepEqual(
      d?.resources.map((r) => r.name),
      ["a"],
    );
  });

  it("sends changed and removed names only", () => {
    const s = synced(view(res("a", "1"), res("b", "1"), res("c", "1")));
    const d = s.diff(T, view(res("a", "1"), res("b", "2"), res("d", "1")));
    assert.deepEqual(
      d?.resources.map((r) => `${r.name}@${r.version}`),
      ["b@2", "d@1"],
    );
    assert.deepEqual(d?.removed, ["c"]);
  });

  it("counts what is in flight as not yet acknowledged", () => {
    const v1 = view(res("a", "1"));
    const v2 = view(res("a", "2"), res("b", "1"));
    const s = synced(v1);
    const p = s.sent(s.diff(T, v2)!, 0);
    assert.equal(s.ackedVersion(T, "a"), "1");
    assert.equal(s.ackedVersion(T, "b"), undefined);
    assert.deepEqual(s.ackedSummary(T, v2), { acked: 1, inSync: false });
    s.settle(p.nonce);
    assert.equal(s.ackedVersion(T, "a"), "2");
    assert.deepEqual(s.ackedSummary(T, v2), { acked: 2, inSync: true });
  });

  it("a NACKed resource stays at the version the client kept, and is not resent until it changes", () => {
    const v1 = view(res("a", "1"), res("b", "1"));
    const v2 = view(res("a", "2"), res("b", "2"));
    const s = synced(v1);
    const p = s.sent(s.diff(T, v2)!, 0);
    s.settle(p.nonce, new Set(["b"]));
    assert.equal(s.ackedVersion(T, "a"), "2");
    assert.equal(s.ackedVersion(T, "b"), "1");
    assert.deepEqual(s.ackedSummary(T, v2), { acked: 2, inSync: false });
    assert.equal(s.diff(T, v2), undefined, "a rejected version is not pushed again");
    const v3 = view(res("a", "2"), res("b", "3"));
    const fix = s.sent(s.diff(T, v3)!, 0);
    assert.deepEqual([...fix.sent.keys()], ["b"]);
    assert.equal(s.ackedVersion(T, "b"), "1");
    s.settle(fix.nonce);
    assert.deepEqual(s.ackedSummary(T, v3), { acked: 2, inSync: true });
  });

  it("a NACKed new resource counts as not held", () => {
    const s = synced(view(res("a", "1")));
    const v2 = view(res("a", "1"), res("bad", "1"));
    s.settle(s.sent(s.diff(T, v2)!, 0).nonce, new Set(["bad"]));
    assert.equal(s.ackedVersion(T, "bad"), undefined);
    assert.deepEqual(s.ackedSummary(T, v2), { acked: 1, inSync: false });
  });

  it("a reconnect's announced versions count as held and acknowledged", () => {
    const v = view(res("a", "1"), res("b", "2"));
    const s = new StreamState();
    s.subscribe(T, { a: "1", b: "1", gone: "7" });
    assert.equal(s.ackedVersion(T, "b"), "1");
    const d = s.diff(T, v);
    assert.deepEqual(
      d?.resources.map((r) => `${r.name}@${r.version}`),
      ["b@2"],
    );
    assert.deepEqual(d?.removed, ["gone"]);
    s.settle(s.sent(d, 0).nonce);
    assert.deepEqual(s.ackedSummary(T, v), { acked: 2, inSync: true });
  });

  it("unsubscribing drops the type's in-flight responses", () => {
    const s = new StreamState();
    s.subscribe(T, {});
    s.sent(s.diff(T, view(res("a", "1")))!, 0);
    assert.equal(s.inFlight(), 1);
    s.unsubscribe(T);
    assert.equal(s.inFlight(), 0);
    assert.deepEqual(s.subscribedTypes(), []);
  });
});
