// Short human descriptions of rules for Decision.reason, built at compile time so that a decision
// only picks a ready string.
import type { Condition, Operation, Source } from "../resources/security.js";
import type { RuleShape } from "./l4.js";

const MAX_VALUES = 3;

function values(vs: readonly string[]): string {
  const shown = vs.slice(0, MAX_VALUES).join(", ");
  return vs.length > MAX_VALUES ? `${shown}, … (${vs.length} in all)` : shown;
}

function fields(obj: Source | Operation): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (Array.isArray(v) && v.length > 0) parts.push(`${k} ${values(v)}`);
  }
  return parts.join(" and ");
}

function condition(c: Condition): string {
  const parts: string[] = [];
  if (c.values && c.values.length > 0) parts.push(`${c.key} in [${values(c.values)}]`);
  if (c.notValues && c.notValues.length > 0) parts.push(`${c.key} not in [${values(c.notValues)}]`);
  return parts.join(" and ");
}

const EMPTY_MATCH = "(nothing left here, never matches)";

/** "methods GET" / "from principals a; to paths /x; when request.headers[x-a] in [1]". */
export function describeRule(shape: RuleShape): string {
  const parts: string[] = [];
  if (shape.from !== null) {
    const alts = shape.from.map((s) => (s === null ? EMPTY_MATCH : fields(s) || "any source"));
    parts.push(`from ${alts.join(" or ")}`);
  }
  if (shape.to !== null) {
    const alts = shape.to.map((o) => (o === null ? EMPTY_MATCH : fields(o) || "any operation"));
    parts.push(`to ${alts.join(" or ")}`);
  }
  for (const w of shape.when) parts.push(w === null ? `when ${EMPTY_MATCH}` : `when ${condition(w)}`);
  let out = parts.length === 0 ? "an empty rule matches everything" : parts.join("; ");
  // A lone from/to/when needs no label: "methods GET" reads better than "to methods GET".
  if (parts.length === 1 && shape.when.length === 0) out = out.replace(/^(from|to) /, "");
  if (shape.removed.length > 0) out += `; ignored at this layer: ${shape.removed.join(", ")}`;
  return out;
}
