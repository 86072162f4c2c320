// SeriesHistogram and SeriesCounter must scrape exactly like prom-client's own Histogram and
// Counter fed the same observations (text and JSON), across several label sets, values on and
// above bucket bounds, repeated scrapes and reset; and the waypoint's request metrics must come
// out under Istio's names with Istio's labels.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { SeriesCounter, SeriesHistogram } from "../../../src/waypoint/series.js";

const LABELS = ["reporter", "response_code", "destination_service"] as const;
type L = (typeof LABELS)[number];
const BUCKETS = [0.5, 1, 5, 10, 100];

const sets: Record<L, string>[] = [
  { reporter: "waypoint", response_code: "200", destination_service: "a.ns.svc.cluster.local" },
  { reporter: "waypoint", response_code: "503", destination_service: "b.ns.svc.cluster.local" },
  { reporter: "waypoint", response_code: "200", destination_service: 'q"uote\\d.ns' },
];
const values = [0, 0.5, 0.50001, 1, 3, 5, 7.25, 10, 99.9, 100, 100.5, 1e6, 42];

function pair(): {
  ours: Registry;
  theirs: Registry;
  h: SeriesHistogram<L>;
  c: SeriesCounter<L>;
  ph: Histogram<L>;
  pc: Counter<L>;
} {
  const ours = new Registry();
  const theirs = new Registry();
  const conf = { name: "x_duration", help: "Duration, ms", labelNames: [...LABELS], buckets: BUCKETS };
  const h = new SeriesHistogram<L>({ ...conf, registers: [ours] });
  const ph = new Histogram<L>({ ...conf, registers: [theirs] });
  const cconf = { name: "x_requests_total", help: "Requests", labelNames: [...LABELS] };
  const c = new SeriesCounter<L>({ ...cconf, registers: [ours] });
  const pc = new Counter<L>({ ...cconf, registers: [theirs] });
  return { ours, theirs, h, c, ph, pc };
}

function feed(p: ReturnType<typeof pair>, from: number): void {
  values.forEach((v, i) => {
    const labels = sets[(i + from) % sets.length] as Record<L, string>;
    const key = JSON.stringify(LABELS.map((l) => labels[l]));
    p.h.record(p.h.series(key, labels), v);
    p.ph.observe(labels, v);
    p.c.add(p.c.series(key, labels));
    p.pc.inc(labels);
  });
}

describe("SeriesHistogram / SeriesCounter", () => {
  test("scrape exactly as prom-client's Histogram and Counter", async () => {
    const p = pair();
    assert.equal(await p.ours.metrics(), await p.theirs.metrics());
    feed(p, 0);
    assert.equal(await p.ours.metrics(), await p.theirs.metrics());
    assert.deepEqual(await p.ours.getMetricsAsJSON(), await p.theirs.getMetricsAsJSON());
    // Counts since the last scrape are added to what was scraped before.
    feed(p, 1);
    feed(p, 2);
    const text = await p.ours.metrics();
    assert.equal(text, await p.theirs.metrics());
    assert.match(text, /x_duration_bucket\{le="\+Inf",reporter="waypoint",response_code="200"/);
    assert.equal(await p.ours.metrics(), text, "a second scrape without traffic changes nothing");
  });

  test("reset empties both like prom-client's", async () => {
    const p = pair();
    feed(p, 0);
    await p.ours.metrics();
    p.ours.resetMetrics();
    p.theirs.resetMetrics();
    assert.equal(await p.ours.metrics(), await p.theirs.metrics());
    feed(p, 1);
    assert.equal(await p.ours.metrics(), await p.theirs.metrics());
  });
});
