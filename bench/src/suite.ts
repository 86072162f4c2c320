// What the quick and full suites run. The quick one stays under 5 minutes on a 2-core machine
// (one rate over 4 connections, one iperf3 stream, shorter runs, fewer idle connections); the full one runs everything the
// Benchmarks issue asks for. Every load runs on every system, repeated, interleaved.

export type LoadKind = "open" | "closed" | "connrate" | "iperf" | "idle";

export interface LoadDef {
  id: string;
  kind: LoadKind;
  title: string;
  seconds: number;
  /** open: requests/s. */
  rate?: number;
  /** HTTP connections (open, closed, connrate parallelism, idle count). */
  connections?: number;
  /** iperf3 parallel streams. */
  streams?: number;
}

export interface Suite {
  name: "quick" | "full";
  repetitions: number;
  loads: LoadDef[];
}

export function suite(full: boolean, repetitions?: number): Suite {
  const s = full ? 10 : 2;
  const rates = full ? [500, 1000, 2000] : [1000];
  const loads: LoadDef[] = [];
  for (const rate of rates)
    // Quick: 4 connections only, so that four systems fit in 5 minutes (--before adds ~2).
    for (const connections of full ? [4, 64] : [4])
      loads.push({
        id: `open-${rate}-c${connections}`,
        kind: "open",
        title: `open loop ${rate} req/s, ${connections} connections`,
        seconds: s,
        rate,
        connections,
      });
  loads.push({
    id: "rtt-c1",
    kind: "closed",
    title: "round trip, 1 connection (closed loop)",
    seconds: s,
    connections: 1,
  });
  loads.push({
    id: "closed-c50",
    kind: "closed",
    title: "closed loop, 50 connections (max req/s)",
    seconds: s,
    connections: 50,
  });
  loads.push({
    id: "connrate-c16",
    kind: "connrate",
    title: "new connections/s (one request each), 16 in parallel",
    seconds: s,
    connections: 16,
  });
  // Quick: one stream only, so that the lab's set-up and the round trip fit in 5 minutes too.
  for (const streams of full ? [1, 8] : [1])
    loads.push({
      id: `iperf-p${streams}`,
      kind: "iperf",
      title: `iperf3, ${streams} stream${streams > 1 ? "s" : ""}`,
      seconds: s,
      streams,
    });
  const idle = full ? 10_000 : 1_000;
  loads.push({
    id: `idle-${idle}`,
    kind: "idle",
    title: `${idle.toLocaleString("en-US")} idle tunnelled connections`,
    seconds: full ? 180 : 60,
    connections: idle,
  });
  return { name: full ? "full" : "quick", repetitions: repetitions ?? 3, loads };
}
