// `ambit lab ...`: the multi-node mesh in network namespaces (DESIGN §10); see src/lab/lab.ts.
import { spawnSync } from "node:child_process";
import type { Command } from "commander";
import { AmbitError } from "../../core/errors.js";
import {
  findPod,
  labDown,
  labLogs,
  labRestartNode,
  labRun,
  labState,
  labStatus,
  labUp,
} from "../../lab/lab.js";
import { collect, type Io } from "../io.js";

function parseLabels(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values.flatMap((x) => x.split(","))) {
    if (v === "") continue;
    const eq = v.indexOf("=");
    if (eq <= 0) throw new AmbitError("AMBIT_E_USAGE", `--labels: expected k=v[,k=v...], got "${v}"`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export function registerLab(program: Command, io: Io, setExit: (code: number) => void): void {
  const say = (line: string): void => io.out(line);
  const lab = program
    .command("lab")
    .enablePositionalOptions()
    .description("a real multi-node mesh in network namespaces on this machine (root)");

  lab
    .command("up")
    .description("build the lab: an underlay, a control plane and N nodes each running `ambit node`")
    .option("--nodes <n>", "number of nodes", "2")
    .action(async (opts: { nodes: string }) => {
      await labUp(Number(opts.nodes), say);
      setExit(0);
    });

  lab
    .command("down")
    .description("remove every namespace, link, process and file the lab created (safe to repeat)")
    .action(async () => {
      await labDown(say);
      setExit(0);
    });

  lab
    .command("run <pod>")
    .description("create a pod (resource, netns via CNI) and run CMD in it in the background")
    .requiredOption("-n, --namespace <ns>", "the pod's namespace")
    .requiredOption("--sa <sa>", "the pod's service account")
    .option("--labels <k=v,...>", "pod labels (repeatable)", collect, [])
    .option("--node <node>", "the node to run on [default: spread over the nodes]")
    .option("--no-mesh", "keep the pod outside the mesh (istio.io/dataplane-mode: none)")
    .argument("<cmd...>", "the command, after --")
    .action(
      async (
        name: string,
        cmd: string[],
        opts: { namespace: string; sa: string; labels: string[]; node?: string; mesh: boolean },
      ) => {
        await labRun(
          {
            name,
            namespace: opts.namespace,
            serviceAccount: opts.sa,
            labels: parseLabels(opts.labels),
            mesh: opts.mesh,
            command: cmd,
            ...(opts.node ? { node: opts.node } : {}),
          },
          say,
        );
        setExit(0);
      },
    );

  lab
    .command("exec <pod>")
    .description("run CMD in the pod's network namespace in the foreground; exits with its status")
    .option("-n, --namespace <ns>", "the pod's namespace (when the name is ambiguous)")
    .argument("<cmd...>", "the command, after --")
    .action((name: string, cmd: string[], opts: { namespace?: string }) => {
      const pod = findPod(labState(), name, opts.namespace);
      const r = spawnSync("ip", ["netns", "exec", pod.netns, ...cmd], { stdio: "inherit" });
      setExit(r.status ?? 1);
    });

  lab
    .command("apply")
    .description(
      "apply resource files to the lab's control plane; a waypoint Gateway (class istio-waypoint) also gets its pod",
    )
    .requiredOption("-f, --filename <path>", "file or directory (repeatable; - for stdin)", collect, [])
    .action(async (opts: { filename: string[] }) => {
      const { labApplyWithWaypoints } = await import("../../lab/waypoints.js");
      await labApplyWithWaypoints(opts.filename, say);
      setExit(0);
    });

  lab
    .command("delete [kind] [names...]")
    .description(
      "delete resources from the lab's control plane (-f files, or KIND NAME...); a deleted waypoint Gateway's pod goes too",
    )
    .option(
      "-f, --filename <path>",
      "the resources these files define (repeatable; - for stdin)",
      collect,
      [],
    )
    .option("-n, --namespace <ns>", "namespace of the named resources")
    .option("--ignore-not-found", "treat an absent resource as deleted")
    .action(
      async (
        kind: string | undefined,
        names: string[],
        opts: { filename: string[]; namespace?: string; ignoreNotFound?: boolean },
      ) => {
        if (!kind && opts.filename.length === 0)
          throw new AmbitError("AMBIT_E_USAGE", "nothing to delete: pass -f FILE or KIND NAME...");
        const { labDeleteWithWaypoints } = await import("../../lab/waypoints.js");
        await labDeleteWithWaypoints(
          {
            paths: opts.filename,
            names,
            ignoreNotFound: opts.ignoreNotFound === true,
            ...(kind ? { kind } : {}),
            ...(opts.namespace ? { namespace: opts.namespace } : {}),
          },
          say,
        );
        setExit(0);
      },
    );

  lab
    .command("logs <target>")
    .description("print a pod's output, or a node's (node-N) or the control plane's log")
    .option("-n, --namespace <ns>", "the pod's namespace (when the name is ambiguous)")
    .action(async (target: string, opts: { namespace?: string }) => {
      io.out((await labLogs(target, opts.namespace)).trimEnd());
      setExit(0);
    });

  lab
    .command("status")
    .description("what the lab is made of")
    .option("-o, --output <format>", "text or json", "text")
    .action((opts: { output: string }) => {
      const st = labStatus();
      if (opts.output === "json") {
        io.out(JSON.stringify(st, null, 2));
      } else if (opts.output === "text") {
        const up = (b: boolean): string => (b ? "running" : "STOPPED");
        io.out(
          `lab in ${st.dir}; underlay ${st.underlay.netns}/${st.underlay.interface} ${st.underlay.cidr}`,
        );
        io.out(`control plane  ${st.controlPlane.address}  ${up(st.controlPlane.running)}`);
        for (const n of st.nodes)
          io.out(`node ${n.name}  ${n.ip}  pods ${n.podCIDR}  netns ${n.netns}  ${up(n.running)}`);
        for (const p of st.pods) {
          io.out(
            `pod ${p.namespace}/${p.name}  ${p.ip}  on ${p.node}  ${p.inMesh ? "mesh" : "no-mesh"}  netns ${p.netns}  ${up(p.running)}`,
          );
        }
      } else throw new AmbitError("AMBIT_E_USAGE", `-o: expected text or json, got "${opts.output}"`);
      setExit(0);
    });

  const node = lab.command("node").description("stop or restart a lab node's proxy");
  node
    .command("stop <name>")
    .description("stop the node proxy (captured pods' connections then fail: capture fails closed)")
    .action(async (name: string) => {
      await labRestartNode(name, true);
      setExit(0);
    });
  node
    .command("start <name>")
    .description("(re)start the node proxy; it re-enrols the pods it had")
    .action(async (name: string) => {
      await labRestartNode(name, false);
      setExit(0);
    });
}
