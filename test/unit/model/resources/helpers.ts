// Helpers for resource-model tests: load YAML text, turn a valid manifest into an invalid one by
// setting or deleting one field, and compare problems by code, path, resource and document index
// (never by message text).
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { loadTexts, type LoadResult } from "../../../../src/model/resources/load.js";
import type { AnyResource } from "../../../../src/model/resources/registry.js";

export type Manifest = Record<string, unknown>;

export function load(text: string, file = "test.yaml"): LoadResult {
  return loadTexts([{ file, text }]);
}

function describeProblems(result: LoadResult): string {
  return result.problems.map((p) => `  ${p.code} ${p.resource ?? ""} ${p.path}: ${p.message}`).join("\n");
}

/** Load text that must be valid; returns its resources. */
export function loadValid(text: string): AnyResource[] {
  const r = load(text);
  assert.deepEqual(r.problems, [], `expected no problems, got:\n${describeProblems(r)}`);
  return r.resources;
}

/** The spec of the single resource in valid text, typed as the caller expects. */
export function specOf<S>(text: string): S {
  const resources = loadValid(text);
  assert.equal(resources.length, 1, "expected exactly one resource");
  return resources[0]?.spec as S;
}

export interface Expected {
  code: string;
  path: string;
  resource?: string;
  index?: number;
}

/** Exactly these problems (order-insensitive), compared on code and path and, when given, resource and index. */
export function assertProblems(result: LoadResult, expected: Expected[]): void {
  const withResource = expected.some((e) => e.resource !== undefined);
  const withIndex = expected.some((e) => e.index !== undefined);
  const key = (p: Expected): string =>
    JSON.stringify([
      p.code,
      p.path,
      withResource ? (p.resource ?? null) : 0,
      withIndex ? (p.index ?? null) : 0,
    ]);
  assert.deepEqual(
    result.problems.map(key).sort(),
    expected.map(key).sort(),
    `problems were:\n${describeProblems(result)}`,
  );
}

export const DELETE = Symbol("delete");

/** Set (or delete) the field at a path such as `spec.http[0].match[0].uri`, creating containers on the way. */
export function setPath(target: Manifest, path: string, value: unknown): void {
  const segs = [...path.matchAll(/([^.[\]]+)|\[(\d+)\]|\["([^"]*)"\]/g)].map((m) =>
    m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3] ?? ""),
  );
  let node: Record<string | number, unknown> = target;
  segs.forEach((seg, i) => {
    if (i === segs.length - 1) {
      if (value === DELETE) {
        if (Array.isArray(node) && typeof seg === "number") node.splice(seg, 1);
        else delete node[seg];
      } else {
        node[seg] = value;
      }
      return;
    }
    const next = node[seg];
    if (typeof next !== "object" || next === null) node[seg] = typeof segs[i + 1] === "number" ? [] : {};
    node = node[seg] as Record<string | number, unknown>;
  });
}

/** A valid manifest with some fields changed, as YAML text. */
export function withChanges(base: Manifest, changes: Record<string, unknown>): string {
  const copy = structuredClone(base);
  for (const [path, value] of Object.entries(changes)) setPath(copy, path, value);
  return stringify(copy);
}

/** One mistake in a valid manifest: the fields to change and the single problem it must cause. */
export interface Mistake {
  name: string;
  set: Record<string, unknown>;
  code: "AMBIT_E_UNKNOWN_FIELD" | "AMBIT_E_INVALID_TYPE" | "AMBIT_E_INVALID_VALUE" | "AMBIT_E_MISSING_FIELD";
  path: string;
}

export function checkMistake(base: Manifest, resource: string, m: Mistake): void {
  assertProblems(load(withChanges(base, m.set)), [{ code: m.code, path: m.path, resource, index: 0 }]);
}
