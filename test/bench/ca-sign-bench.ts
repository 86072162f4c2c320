// Signing throughput of the CA: 200 distinct P-256 CSRs, then N signings through signWorkloadCsr
// with many requests in flight. Run: npx tsc -p . && node dist/test/bench/ca-sign-bench.js [N] [workers…]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "../../src/identity/ca.js";
import { createCsr, generateKey } from "../../src/identity/pki.js";

const N = Number(process.argv[2] ?? 5000);
const WORKER_COUNTS = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [undefined];
const CONCURRENCY = 64;
const DISTINCT_CSRS = 200;
const TD = "cluster.local";

const requests = Array.from({ length: DISTINCT_CSRS }, (_, i) => {
  const identity = `spiffe://${TD}/ns/ns${i % 10}/sa/sa${i}`;
  return { identity, csrPem: createCsr(generateKey("P-256").privateKey, { uris: [identity] }) };
});

async function run(workers: number | undefined): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "ambit-ca-bench-"));
  const ca = await CertificateAuthority.open({
    stateDir: dir,
    trustDomain: TD,
    ...(workers !== undefined ? { workers } : {}),
  });
  try {
    // Warm up (worker start-up, JIT).
    await Promise.all(requests.map((r) => ca.signWorkloadCsr({ ...r, validitySeconds: 3600 })));
    let next = 0;
    let failures = 0;
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    const lane = async (): Promise<void> => {
      while (next < N) {
        const r = requests[next++ % DISTINCT_CSRS] as (typeof requests)[number];
        const out = await ca.signWorkloadCsr({ ...r, validitySeconds: 3600 });
        if (!out.ok) failures++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const cpuMsPerSigning = (cpu.user + cpu.system) / 1000 / N;
    const label = workers === undefined ? "default workers" : `${workers} worker${workers === 1 ? "" : "s"}`;
    console.log(
      `${label.padEnd(16)} ${N} signings in ${seconds.toFixed(2)} s = ${Math.round(N / seconds)} signings/s ` +
        `(${CONCURRENCY} in flight, ${failures} failures; ${cpuMsPerSigning.toFixed(3)} ms CPU per signing, all threads)`,
    );
    if (failures > 0) process.exitCode = 1;
  } finally {
    await ca.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const w of WORKER_COUNTS) await run(w);
