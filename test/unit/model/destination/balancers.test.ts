// Load balancers: round robin order, random and power-of-two-choices distributions with a seeded
// random source, ring hash and Maglev stability, spread and remapping; xxHash64 test vectors.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  buildMaglevTable,
  createBalancer,
  xxhash64Hex,
  type ClusterPolicy,
  type HashPolicy,
  type PickContext,
} from "../../../../src/model/destination/index.js";
import { endpoints, seeded } from "./helpers.js";

function ctx(opts: Partial<PickContext> = {}): PickContext {
  return { hashKey: null, inFlight: () => 0, random: seeded(1), ...opts };
}

function counts(picks: (string | null)[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of picks) if (p !== null) m.set(p, (m.get(p) ?? 0) + 1);
  return m;
}

const HASH: HashPolicy = { key: { kind: "header", name: "x-user" }, minimumRingSize: 1024, tableSize: 65537 };
const ring = (): ClusterPolicy["lb"] => ({ kind: "RING_HASH", hash: HASH });
const maglev = (tableSize = 65537): ClusterPolicy["lb"] => ({ kind: "MAGLEV", hash: { ...HASH, tableSize } });

describe("xxHash64", () => {
  test("known vectors", () => {
    assert.equal(xxhash64Hex(""), "ef46db3751d8e999");
    assert.equal(xxhash64Hex("a"), "d24ec4f1a98c6e5b");
    assert.equal(xxhash64Hex("abc"), "44bc2cf5ad770999");
    assert.equal(xxhash64Hex("Nobody inspects the spammish repetition"), "fbcea83c8a378bf1");
  });
});

describe("every balancer", () => {
  for (const lb of [
    { kind: "ROUND_ROBIN" },
    { kind: "RANDOM" },
    { kind: "LEAST_REQUEST" },
    ring(),
    maglev(),
  ] as ClusterPolicy["lb"][]) {
    test(`${lb.kind}: no endpoints → null; one endpoint → it`, () => {
      const b = createBalancer({ lb });
      assert.equal(b.kind, lb.kind);
      assert.equal(b.pick([], ctx({ hashKey: "k" })), null);
      assert.equal(b.pick(["only"], ctx({ hashKey: "k" })), "only");
      assert.equal(b.pick(["only"], ctx()), "only");
    });
  }
});

describe("ROUND_ROBIN", () => {
  test("cycles in order and stays stable over an unchanged set", () => {
    const b = createBalancer({ lb: { kind: "ROUND_ROBIN" } });
    const eps = ["a", "b", "c"];
    const got = Array.from({ length: 7 }, () => b.pick(eps, ctx()));
    assert.deepEqual(got, ["a", "b", "c", "a", "b", "c", "a"]);
  });

  test("a changed set keeps going without skipping past the end", () => {
    const b = createBalancer({ lb: { kind: "ROUND_ROBIN" } });
    b.pick(["a", "b", "c"], ctx());
    b.pick(["a", "b", "c"], ctx());
    assert.deepEqual(
      Array.from({ length: 4 }, () => b.pick(["a", "b"], ctx())),
      ["a", "b", "a", "b"],
    );
  });
});

describe("RANDOM", () => {
  test("uniform within 5% over 40000 seeded picks", () => {
    const b = createBalancer({ lb: { kind: "RANDOM" } });
    const eps = endpoints(4);
    const c = ctx({ random: seeded(42) });
    const got = counts(Array.from({ length: 40_000 }, () => b.pick(eps, c)));
    assert.equal(got.size, 4);
    for (const e of eps) {
      const n = got.get(e) ?? 0;
      assert.ok(n > 9500 && n < 10_500, `${e}: ${n}`);
    }
  });
});

describe("LEAST_REQUEST (power of two choices)", () => {
  test("the loaded endpoint is picked only when both choices land on it (~1/9 of 3)", () => {
    const b = createBalancer({ lb: { kind: "LEAST_REQUEST" } });
    const eps = ["busy", "idle1", "idle2"];
    const load: Record<string, number> = { busy: 50, idle1: 0, idle2: 1 };
    const c = ctx({ random: seeded(7), inFlight: (k) => load[k] ?? 0 });
    const got = counts(Array.from({ length: 9000 }, () => b.pick(eps, c)));
    const busy = got.get("busy") ?? 0;
    assert.ok(busy > 800 && busy < 1200, `busy picked ${busy} times`);
    assert.ok((got.get("idle1") ?? 0) > (got.get("idle2") ?? 0), "the least loaded is preferred");
  });

  test("equal loads spread evenly", () => {
    const b = createBalancer({ lb: { kind: "LEAST_REQUEST" } });
    const eps = endpoints(3);
    const c = ctx({ random: seeded(3) });
    const got = counts(Array.from({ length: 9000 }, () => b.pick(eps, c)));
    for (const e of eps) assert.ok((got.get(e) ?? 0) > 2700, `${e}: ${got.get(e)}`);
  });

  test("of two endpoints the less loaded wins whenever the choices differ", () => {
    const b = createBalancer({ lb: { kind: "LEAST_REQUEST" } });
    const load: Record<string, number> = { a: 3, b: 1 };
    const c = ctx({ random: seeded(11), inFlight: (k) => load[k] ?? 0 });
    const got = counts(Array.from({ length: 4000 }, () => b.pick(["a", "b"], c)));
    const a = got.get("a") ?? 0;
    assert.ok(a > 800 && a < 1200, `a (loaded) picked ${a} of 4000 (expected ~1/4)`);
  });
});

describe("PASSTHROUGH", () => {
  test("the original destination, if it is an endpoint", () => {
    const b = createBalancer({ lb: { kind: "PASSTHROUGH" } });
    assert.equal(b.pick(["a", "b"], ctx({ originalDestination: "b" })), "b");
    assert.equal(b.pick(["a", "b"], ctx({ originalDestination: "c" })), null);
    assert.equal(b.pick(["a", "b"], ctx()), null);
  });
});

const KEYS = Array.from({ length: 5000 }, (_, i) => `user-${i}`);

function mapping(lb: ClusterPolicy["lb"], eps: readonly string[]): Map<string, string | null> {
  const b = createBalancer({ lb });
  return new Map(KEYS.map((k) => [k, b.pick(eps, ctx({ hashKey: k }))]));
}

for (const [name, lb] of [
  ["RING_HASH", ring()],
  ["MAGLEV", maglev()],
] as const) {
  describe(`${name}`, () => {
    const eps = endpoints(10);

    test("the same key always gets the same endpoint, across balancers and endpoint order", () => {
      const a = mapping(lb, eps);
      const b = mapping(lb, [...eps].reverse());
      assert.deepEqual([...a.entries()], [...b.entries()]);
      const one = createBalancer({ lb });
      const first = one.pick(eps, ctx({ hashKey: "alice" }));
      for (let i = 0; i < 20; i++) assert.equal(one.pick(eps, ctx({ hashKey: "alice" })), first);
    });

    test("keys spread over all endpoints (each 5%-15% of 5000 keys)", () => {
      const got = counts([...mapping(lb, eps).values()]);
      assert.equal(got.size, 10);
      for (const e of eps) {
        const n = got.get(e) ?? 0;
        assert.ok(n > 250 && n < 750, `${e}: ${n}`);
      }
    });

    test("removing an endpoint remaps its keys and (almost) no others", () => {
      const before = mapping(lb, eps);
      const removed = eps[3] ?? "";
      const after = mapping(
        lb,
        eps.filter((e) => e !== removed),
      );
      let movedOthers = 0;
      for (const k of KEYS) {
        const was = before.get(k);
        const now = after.get(k);
        if (was === removed) assert.notEqual(now, removed);
        else if (was !== now) movedOthers++;
      }
      // Ring hash is exact; Maglev promises minimal disruption, not none.
      const bound = name === "RING_HASH" ? 0 : KEYS.length * 0.05;
      assert.ok(movedOthers <= bound, `${movedOthers} keys of other endpoints moved`);
    });

    test("adding an endpoint moves keys only onto it", () => {
      const before = mapping(lb, eps);
      const after = mapping(lb, [...eps, "10.0.9.9:8080"]);
      let moved = 0;
      let movedElsewhere = 0;
      for (const k of KEYS) {
        if (before.get(k) === after.get(k)) continue;
        moved++;
        if (after.get(k) !== "10.0.9.9:8080") movedElsewhere++;
      }
      assert.ok(moved > 200 && moved < 800, `moved ${moved}`);
      const bound = name === "RING_HASH" ? 0 : KEYS.length * 0.05;
      assert.ok(movedElsewhere <= bound, `${movedElsewhere} keys moved between old endpoints`);
    });

    test("no hash key: a random endpoint (still one of them)", () => {
      const b = createBalancer({ lb });
      const c = ctx({ random: seeded(5) });
      const got = counts(Array.from({ length: 2000 }, () => b.pick(eps, c)));
      assert.ok(got.size >= 8, `only ${got.size} endpoints seen`);
      for (const k of got.keys()) assert.ok(eps.includes(k));
    });
  });
}

describe("Maglev table", () => {
  test("every endpoint owns floor or ceil of M/n entries", () => {
    for (const [n, m] of [
      [3, 65537],
      [7, 251],
      [10, 65537],
    ] as const) {
      const table = buildMaglevTable(endpoints(n), m);
      assert.equal(table.length, m);
      const got = counts(table);
      assert.equal(got.size, n);
      for (const c of got.values()) assert.ok(c === Math.floor(m / n) || c === Math.ceil(m / n), `${c}`);
    }
  });

  test("a small prime table works and stays stable", () => {
    const a = mapping(maglev(251), endpoints(5));
    const b = mapping(maglev(251), endpoints(5));
    assert.deepEqual([...a.entries()], [...b.entries()]);
  });
});
