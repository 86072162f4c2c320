// The config store's writes without processes: all-or-nothing apply, atomic per-resource files,
// unchanged detection, generations, delete and NotFound, invalid on-disk edits keeping the last version.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parse } from "yaml";
import { ConfigStore, ownFileName, type StoredResource } from "../../../src/controlplane/config-store.js";
import { loadTexts } from "../../../src/model/resources/load.js";

const AP = (name: string, ns = "shop", extra = ""): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: ${ns}
  labels: { team: payments }
spec:
  selector: { matchLabels: { app: payments } }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/orders"] } }]${extra}
`;

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), "ambit-store-"));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The validated AuthorizationPolicy spec of a stored entry. */
const apSpec = (e: StoredResource | undefined): { action?: string; rules?: unknown[] } =>
  (e?.resource.spec ?? {}) as { action?: string; rules?: unknown[] };

const visibleFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => !f.startsWith("."))
    .sort();

describe("ConfigStore writes", () => {
  test("apply persists one parseable YAML file per resource in the user's shape", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: false });
    const r = await store.apply([
      { file: "a.yaml", text: `${AP("allow-orders")}---\n${AP("allow-web", "web")}` },
    ]);
    assert.deepEqual(r, {
      ok: true,
      applied: [
        { kind: "AuthorizationPolicy", namespace: "shop", name: "allow-orders", action: "created" },
        { kind: "AuthorizationPolicy", namespace: "web", name: "allow-web", action: "created" },
      ],
    });
    assert.deepEqual(visibleFiles(dir), [
      "authorizationpolicy_shop_allow-orders.yaml",
      "authorizationpolicy_web_allow-web.yaml",
    ]);
    // No temp files left behind.
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith(".")),
      [],
    );
    const text = readFileSync(join(dir, "authorizationpolicy_shop_allow-orders.yaml"), "utf8");
    assert.deepEqual(parse(text), parse(AP("allow-orders")));
    assert.equal(loadTexts([{ file: "x", text }]).problems.length, 0);
    // The user's shape: no defaulted action.
    assert.equal((parse(text) as { spec: { action?: string } }).spec.action, undefined);
    const [e] = store.list({ kind: "AuthorizationPolicy", namespace: "shop" });
    assert.equal(e?.status.phase, "accepted");
    assert.equal(e?.status.generation, 1);
    assert.deepEqual(e?.status.acks, []);
    assert.equal(apSpec(e).action, "ALLOW");
    store.close();
  });

  test("apply is all-or-nothing and lists every problem with file, resource and field path", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: false });
    const bad = AP("broken").replace("principals:", "principalz:");
    const r = await store.apply([
      { file: "good.yaml", text: AP("fine") },
      { file: "bad.yaml", text: bad },
      {
        file: "worse.yaml",
        text: AP("also-bad").replace("apiVersion: security.istio.io/v1", "apiVersion: nope/v9"),
      },
    ]);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.problems.length, 2);
    const p = r.problems.find((x) => x.file === "bad.yaml");
    assert.equal(p?.resource, "AuthorizationPolicy shop/broken");
    assert.equal(p?.path, "spec.rules[0].from[0].source.principalz");
    assert.equal(p?.code, "AMBIT_E_UNKNOWN_FIELD");
    assert.ok(r.problems.some((x) => x.file === "worse.yaml" && x.path === "apiVersion"));
    assert.deepEqual(visibleFiles(dir), []);
    assert.equal(store.resources().length, 0);
    store.close();
  });

  test("re-applying the same document is unchanged; a change bumps the generation", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: false });
    await store.apply([{ file: "a.yaml", text: AP("p") }]);
    const again = await store.apply([{ file: "b.yaml", text: AP("p") }]);
    assert.deepEqual(again.ok && again.applied.map((a) => a.action), ["unchanged"]);
    assert.equal(store.list({ name: "p" })[0]?.status.generation, 1);
    const changed = await store.apply([{ file: "c.yaml", text: AP("p", "shop", "\n  action: DENY") }]);
    assert.deepEqual(changed.ok && changed.applied.map((a) => a.action), ["configured"]);
    const e = store.list({ name: "p" })[0];
    assert.equal(e?.status.generation, 2);
    assert.equal(apSpec(e).action, "DENY");
    assert.equal((e?.raw.spec as { action?: string }).action, "DENY");
    store.close();
  });

  test("delete removes the file; absent resources are NotFound unless ignored, all-or-nothing", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: false });
    await store.apply([{ file: "a.yaml", text: `${AP("one")}---\n${AP("two")}` }]);
    const missing = await store.delete([
      { kind: "AuthorizationPolicy", namespace: "shop", name: "one" },
      { kind: "AuthorizationPolicy", namespace: "shop", name: "ghost" },
    ]);
    assert.equal(missing.ok, false);
    assert.deepEqual(!missing.ok && missing.notFound, [
      { kind: "AuthorizationPolicy", namespace: "shop", name: "ghost" },
    ]);
    assert.equal(visibleFiles(dir).length, 2, "nothing deleted when one is absent");
    const ok = await store.delete(
      [
        { kind: "ap", namespace: "shop", name: "one" },
        { kind: "AuthorizationPolicy", namespace: "shop", name: "ghost" },
      ],
      { ignoreNotFound: true },
    );
    assert.equal(ok.ok, true);
    assert.deepEqual(visibleFiles(dir), ["authorizationpolicy_shop_two.yaml"]);
    assert.deepEqual(
      store.resources().map((r) => r.metadata.name),
      ["two"],
    );
    store.close();
  });

  test("an invalid on-disk edit keeps serving the last accepted version with status rejected", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: false });
    await store.apply([{ file: "a.yaml", text: AP("p") }]);
    const file = join(
      dir,
      ownFileName({ kind: "AuthorizationPolicy", metadata: { name: "p", namespace: "shop" } }),
    );
    writeFileSync(file, AP("p").replace("rules:", "rulez:"));
    await store.reload();
    const e = store.list({ name: "p" })[0];
    assert.equal(e?.status.phase, "rejected");
    assert.equal(e?.status.generation, 1);
    assert.match(e?.status.message ?? "", /still serving generation 1/);
    assert.equal(e?.status.problems[0]?.path, "spec.rulez");
    assert.equal(store.problems().length, 1);
    assert.equal(apSpec(e).rules?.length, 1, "the last accepted version serves");
    // A file that no longer parses at all also keeps the served version.
    writeFileSync(file, "apiVersion: [unclosed");
    await store.reload();
    assert.equal(store.list({ name: "p" })[0]?.status.phase, "rejected");
    // Applying a valid version over the rejected edit repairs it (and counts as configured).
    const fixed = await store.apply([{ file: "x.yaml", text: AP("p", "shop", "\n  action: AUDIT") }]);
    assert.deepEqual(fixed.ok && fixed.applied.map((a) => a.action), ["configured"]);
    const after = store.list({ name: "p" })[0];
    assert.equal(after?.status.phase, "accepted");
    assert.equal(after?.status.generation, 2);
    assert.equal(store.problems().length, 0);
    store.close();
  });

  test("a resource never accepted is listed as rejected; applying a valid version creates it", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "draft.yaml"), AP("draft").replace("rules:", "rulez:"));
    const store = await ConfigStore.open(dir, { watch: false });
    assert.deepEqual(store.list(), []);
    const [r] = store.listRejected({ kind: "AuthorizationPolicy" });
    assert.equal(r?.name, "draft");
    assert.equal(r?.namespace, "shop");
    assert.equal(r?.problems[0]?.path, "spec.rulez");
    const fixed = await store.apply([{ file: "x.yaml", text: AP("draft") }]);
    assert.deepEqual(fixed.ok && fixed.applied.map((a) => a.action), ["created"]);
    // The user's single-document file was fixed in place: no second definition appeared.
    assert.deepEqual(visibleFiles(dir), ["draft.yaml"]);
    assert.deepEqual(store.listRejected(), []);
    assert.equal(store.list({ name: "draft" })[0]?.status.phase, "accepted");
    store.close();
  });

  test("apply reads the directory first: an edit the watcher has not seen yet is not duplicated", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: false });
    writeFileSync(join(dir, "hand.yaml"), AP("by-hand"));
    const r = await store.apply([{ file: "x.yaml", text: AP("by-hand", "shop", "\n  action: DENY") }]);
    assert.deepEqual(r.ok && r.applied.map((a) => a.action), ["configured"]);
    assert.deepEqual(visibleFiles(dir), ["hand.yaml"]);
    assert.equal(store.problems().length, 0);
    store.close();
  });

  test("a resource in a user file is updated in place when alone, refused when it shares the file", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "mine.yaml"), AP("solo"));
    writeFileSync(join(dir, "shared.yaml"), `${AP("a")}---\n${AP("b")}`);
    const store = await ConfigStore.open(dir, { watch: false });
    const solo = await store.apply([{ file: "x.yaml", text: AP("solo", "shop", "\n  action: DENY") }]);
    assert.deepEqual(solo.ok && solo.applied.map((a) => a.action), ["configured"]);
    assert.deepEqual(visibleFiles(dir), ["mine.yaml", "shared.yaml"]);
    assert.equal(
      (parse(readFileSync(join(dir, "mine.yaml"), "utf8")) as { spec: { action: string } }).spec.action,
      "DENY",
    );
    const shared = await store.apply([{ file: "y.yaml", text: AP("a", "shop", "\n  action: DENY") }]);
    assert.equal(shared.ok, false);
    assert.equal(!shared.ok && shared.problems[0]?.code, "AMBIT_E_CONFLICT");
    assert.match((!shared.ok && shared.problems[0]?.message) || "", /shared\.yaml/);
    const del = await store.delete([{ kind: "AuthorizationPolicy", namespace: "shop", name: "b" }]);
    assert.equal(del.ok, false);
    assert.equal(store.resources().length, 3);
    store.close();
  });

  test("very long names still get a valid, distinct file name", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: false });
    const long = (c: string): string =>
      `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${c.repeat(60)}`;
    const r = await store.apply([
      { file: "x.yaml", text: `${AP(long("d"), "n".repeat(63))}---\n${AP(long("e"), "n".repeat(63))}` },
    ]);
    assert.equal(r.ok, true, JSON.stringify(r));
    const files = visibleFiles(dir);
    assert.equal(files.length, 2);
    assert.ok(files.every((f) => f.length <= 205));
    const again = await store.apply([{ file: "x.yaml", text: AP(long("d"), "n".repeat(63)) }]);
    assert.deepEqual(again.ok && again.applied.map((a) => a.action), ["unchanged"]);
    store.close();
  });

  test("apply and reload serialize: concurrent applies all land, generations stay consistent", async () => {
    const dir = tempDir();
    const store = await ConfigStore.open(dir, { watch: true, debounceMs: 5 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        Promise.all([store.apply([{ file: `f${i}.yaml`, text: AP(`p${i}`) }]), store.reload()]),
      ),
    );
    assert.ok(results.every(([r]) => r.ok));
    await new Promise((r) => setTimeout(r, 50));
    await store.reload();
    assert.equal(store.resources().length, 20);
    assert.ok(store.list().every((e) => e.status.generation === 1 && e.status.phase === "accepted"));
    store.close();
  });
});
