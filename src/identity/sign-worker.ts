// Worker-thread entry of the CA's signing pool: keeps the issuers the pool sends and signs the
// batches of jobs it posts, answering each batch with results keyed by sequence number.
import { parentPort, workerData } from "node:worker_threads";
import type { CsrPolicy } from "./csr-policy.js";
import { LeafSigner, type FromWorker, type JobResult, type ToWorker } from "./sign-job.js";

const port = parentPort;
if (!port) throw new Error("sign-worker.js runs only as a worker thread");
const policy = (workerData as { policy: CsrPolicy }).policy;
const signers = new Map<number, LeafSigner>();

port.on("message", (m: ToWorker) => {
  switch (m.t) {
    case "issuer":
      try {
        signers.set(m.id, LeafSigner.fromPem(m.certPem, m.keyPem, policy));
      } catch {
        signers.delete(m.id); // the pool validated it already; jobs for it report "not loaded"
      }
      return;
    case "drop":
      signers.delete(m.id);
      return;
    case "sign": {
      const results: JobResult[] = [];
      for (const { seq, issuer, job } of m.jobs) {
        try {
          const signer = signers.get(issuer);
          results.push(
            signer
              ? { seq, out: signer.sign(job) }
              : { seq, error: `issuer ${issuer} is not loaded in the signing worker` },
          );
        } catch (err) {
          results.push({ seq, error: err instanceof Error ? err.message : String(err) });
        }
      }
      const reply: FromWorker = { results };
      port.postMessage(reply);
      return;
    }
  }
});
