// Statistics over repeated runs: the median and the spread (min..max) of each measure, and ratios
// between systems. Pure: no I/O, so the unit tests cover it.

export interface Spread {
  /** Median of the repetitions. */
  median: number;
  min: number;
  max: number;
  /** Every repetition's value, in run order. */
  runs: number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, runs: [...values] };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), runs: [...values] };
}

/** a / b, or NaN when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0)
    return Number.NaN;
  return a / b;
}

/**
 * Added latency of `system` over `baseline` per repetition (run i of one minus run i of the other,
 * the two having run back to back), summarised as a spread.
 */
export function addedOver(system: readonly number[], baseline: readonly number[]): Spread {
  const n = Math.min(system.length, baseline.length);
  const diffs: number[] = [];
  for (let i = 0; i < n; i++) diffs.push((system[i] as number) - (baseline[i] as number));
  return spread(diffs);
}

/** Rotate `items` by `round` places: interleaved runs do not always start with the same system. */
export function rotation<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = ((round % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Format a spread as "median (min–max)" with `digits` decimals. */
export function fmtSpread(s: Spread | undefined, digits = 0, unit = ""): string {
  if (!s || !Number.isFinite(s.median)) return "—";
  const f = (v: number): string => v.toFixed(digits);
  if (s.runs.length < 2) return `${f(s.median)}${unit}`;
  return `${f(s.median)}${unit} (${f(s.min)}…${f(s.max)})`;
}
