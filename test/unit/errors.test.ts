// The error-code catalogue (docs/errors.md) and the code (src/core/errors.ts) list the same codes.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ERROR_CODES } from "../../src/core/errors.js";
import { VERSION } from "../../src/core/version.js";
import { repoRoot } from "../support/repo.js";

test("every error code is documented in docs/errors.md and every documented code exists", () => {
  const doc = readFileSync(join(repoRoot(), "docs", "errors.md"), "utf8");
  const documented = new Set([...doc.matchAll(/^\|\s*`(AMBIT_E_[A-Z0-9_]+)`/gm)].map((m) => m[1]));
  const defined = new Set(Object.keys(ERROR_CODES));
  assert.deepEqual(
    [...defined].filter((c) => !documented.has(c)),
    [],
    "codes missing from docs/errors.md",
  );
  assert.deepEqual(
    [...documented].filter((c) => c !== undefined && !defined.has(c)),
    [],
    "documented codes not in src/core/errors.ts",
  );
});

test("every code used in src/ is defined", () => {
  const out = execFileSync("grep", ["-rhoE", "AMBIT_E_[A-Z0-9_]+", join(repoRoot(), "src")], {
    encoding: "utf8",
  });
  const used = new Set(out.split("\n").filter(Boolean));
  const undefinedCodes = [...used].filter((c) => !(c in ERROR_CODES));
  assert.deepEqual(undefinedCodes, []);
});

test("the version the processes report is package.json's", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version: string };
  assert.equal(VERSION, pkg.version);
});
