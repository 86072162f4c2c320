// Helpers for destination-model tests: DestinationRules loaded from YAML through the project's
// loader (so schema defaults apply), a seeded random source, and endpoint names.
import { loadValid } from "../resources/helpers.js";
import type { DestinationRule } from "../../../../src/model/resources/registry.js";
import { compileDestinationRules, type DestinationIndex } from "../../../../src/model/destination/index.js";

export function rulesOf(yaml: string): DestinationRule[] {
  return loadValid(yaml).filter((r): r is DestinationRule => r.kind === "DestinationRule");
}

export function indexOf(yaml: string, rootNamespace = "istio-system"): DestinationIndex {
  return compileDestinationRules(rulesOf(yaml), { rootNamespace, domain: "cluster.local" });
}

/** mulberry32: a small deterministic PRNG, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function endpoints(n: number, prefix = "10.0.0."): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i + 1}:8080`);
}
