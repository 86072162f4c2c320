// `ambit authz check`: evaluate policies against one request with the same engine the proxies use.
import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { loadResourceFiles, readStdin } from "../../config/files.js";
import { authorize, compilePolicySet, parseAuthzRequest } from "../../model/authz/index.js";
import type { Decision, Layer } from "../../model/authz/types.js";
import type { Problem } from "../../model/resources/problem.js";
import type { AuthorizationPolicy, PeerAuthentication } from "../../model/resources/registry.js";
import { collect, printProblems, type Io } from "../io.js";

interface CheckOptions {
  filename: string[];
  request: string;
  layer?: Layer;
  rootNamespace: string;
  output: "text" | "json";
}

export const EXIT_INVALID_INPUT = 2;

async function readRequest(path: string): Promise<{ value?: unknown; problems: Problem[] }> {
  const file = path === "-" ? "<stdin>" : path;
  let text: string;
  try {
    if (path === "-") {
      text = await readStdin();
    } else {
      text = await readFile(path, "utf8");
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return {
      problems: [{ code: "AMBIT_E_FILE_READ", file, index: 0, path: "", message: `cannot read: ${code}` }],
    };
  }
  try {
    return { value: JSON.parse(text) as unknown, problems: [] };
  } catch (err) {
    const message = `invalid JSON: ${(err as Error).message}`;
    return { problems: [{ code: "AMBIT_E_PARSE", file, index: 0, path: "", message }] };
  }
}

export function renderDecision(d: Decision, format: "text" | "json"): string {
  if (format === "json") return JSON.stringify({ decision: d.decision, policy: d.policy, reason: d.reason });
  const lines = [d.decision, `policy: ${d.policy ?? "(none)"}`, `reason: ${d.reason}`];
  if (d.audit.length > 0) lines.push(`audit: ${d.audit.join(", ")}`);
  for (const n of d.dryRun)
    lines.push(`dry-run: ${n.action} ${n.policy} ${n.matched ? "would match" : "would not match"}`);
  if (d.custom.length > 0) lines.push(`custom (needs an external authorizer): ${d.custom.join(", ")}`);
  return lines.join("\n");
}

export function registerAuthz(program: Command, io: Io, setExit: (code: number) => void): void {
  const authz = program.command("authz").description("authorization tools");
  authz
    .command("check")
    .description("decide ALLOW or DENY for one request against AuthorizationPolicy/PeerAuthentication files")
    .requiredOption(
      "-f, --filename <path>",
      "policy file or directory (repeatable; YAML, JSON or a JSON array)",
      collect,
      [],
    )
    .requiredOption("--request <file>", "the request as JSON (- for stdin)")
    .addOption(
      new Option(
        "--layer <layer>",
        "enforcement layer (default: L7 when the request has http, else L4)",
      ).choices(["L4", "L7"]),
    )
    .option("--root-namespace <ns>", "the mesh root namespace", "istio-system")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (opts: CheckOptions) => {
      const loaded = await loadResourceFiles(opts.filename);
      const req = await readRequest(opts.request);
      const problems = [...loaded.problems, ...req.problems];
      const parsed =
        req.value !== undefined
          ? parseAuthzRequest(req.value, opts.request === "-" ? "<stdin>" : opts.request)
          : undefined;
      if (parsed && !parsed.ok) problems.push(...parsed.problems);
      if (problems.length > 0 || !parsed?.ok) {
        printProblems(io, problems);
        setExit(EXIT_INVALID_INPUT);
        return;
      }
      const set = compilePolicySet({
        authorizationPolicies: loaded.resources.filter(
          (r): r is AuthorizationPolicy => r.kind === "AuthorizationPolicy",
        ),
        peerAuthentications: loaded.resources.filter(
          (r): r is PeerAuthentication => r.kind === "PeerAuthentication",
        ),
        rootNamespace: opts.rootNamespace,
      });
      const layer: Layer = opts.layer ?? (parsed.value.http ? "L7" : "L4");
      io.out(renderDecision(authorize(set, parsed.value, layer), opts.output));
      setExit(0);
    });
}
