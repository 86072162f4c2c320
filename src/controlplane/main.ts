// `ambit control-plane`: wires the CA, the config store, join tokens, revocations, the gRPC
// endpoint (CA + enrolment) and the admin API into one process.
import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { Histogram } from "prom-client";
import type { Logger } from "../core/log.js";
import { createRegistry } from "../core/metrics.js";
import { CertificateAuthority } from "../identity/ca.js";
import { AdminApi } from "./admin-api.js";
import { loadOrCreateAdminToken } from "./admin-token.js";
import { ConfigStore } from "./config-store.js";
import { ControlPlaneGrpcServer } from "./grpc-server.js";
import { JoinTokenStore } from "./join-tokens.js";
import { RevocationStore } from "./revocations.js";
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL } from "../api/xds-types.js";
import { DEFAULT_CLUSTER_ID, podUid, type SnapshotInput } from "./xds/convert.js";
import { DeltaXdsServer } from "./xds/server.js";
import type { ResourceView } from "./xds/state.js";
import { buildResourceView } from "./xds/view.js";

export interface ControlPlaneOptions {
  stateDir: string;
  grpc: { host: string; port: number };
  admin: { host: string; port: number };
  trustDomain: string;
  pluginCa?: { certFile: string; keyFile: string; chainFile?: string } | undefined;
  /** Extra names for the gRPC server certificate; defaults: localhost, 127.0.0.1, the host name, the listen address. */
  serverSans?: string[] | undefined;
  maxWorkloadTtlSeconds?: number | undefined;
  rootGraceSeconds?: number | undefined;
  log: Logger;
}

export interface RunningControlPlane {
  grpcPort: number;
  adminPort: number;
  ca: CertificateAuthority;
  close(): Promise<void>;
}

export function defaultServerSans(
  listenHost: string,
  extra: readonly string[] = [],
): { dns: string[]; ips: string[] } {
  const names = new Set(["localhost", "127.0.0.1", hostname(), ...extra]);
  if (listenHost !== "0.0.0.0" && listenHost !== "::") names.add(listenHost);
  const dns: string[] = [];
  const ips: string[] = [];
  for (const n of names) (isIP(n) ? ips : dns).push(n);
  return { dns, ips };
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  const metrics = createRegistry("control-plane");
  const ca = await CertificateAuthority.open({
    stateDir: opts.stateDir,
    trustDomain: opts.trustDomain,
    ...(opts.pluginCa ? { pluginCa: opts.pluginCa } : {}),
    ...(opts.maxWorkloadTtlSeconds !== undefined
      ? { maxWorkloadTtlSeconds: opts.maxWorkloadTtlSeconds }
      : {}),
    ...(opts.rootGraceSeconds !== undefined ? { rootGraceSeconds: opts.rootGraceSeconds } : {}),
  });
  const config = await ConfigStore.open(join(opts.stateDir, "config"));
  const joinTokens = await JoinTokenStore.open(opts.stateDir);
  const revocations = await RevocationStore.open(opts.stateDir);
  const token = await loadOrCreateAdminToken(opts.stateDir);
  const serverSans = opts.serverSans?.length
    ? defaultServerSans(opts.grpc.host, opts.serverSans)
    : defaultServerSans(opts.grpc.host);
  // Every data-plane client is served the same converted snapshot, rebuilt once per change.
  const snapshotInput = (): SnapshotInput => ({
    resources: config.resources(),
    podIps: new Map(),
    revocations: revocations.list(),
    trustDomain: opts.trustDomain,
  });
  let view = buildResourceView(snapshotInput());
  const viewBuild = new Histogram({
    name: "ambit_xds_view_build_seconds",
    help: "Time to convert and encode every pushed resource after a config change",
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics],
  });
  // The xDS server authenticates with the gRPC server's node check; the gRPC server hosts it.
  const grpcRef: { server?: ControlPlaneGrpcServer } = {};
  const xds = new DeltaXdsServer({
    log: opts.log,
    metrics,
    authenticate: (call) => {
      const who = grpcRef.server?.authenticateNode(call);
      if (!who) return { error: "control plane is starting" };
      if ("reason" in who) return { error: who.reason };
      return { id: `node/${who.node}`, kind: "node", name: who.node };
    },
    view: () => currentView(),
  });
  // A change only marks the view stale: it is rebuilt when next needed (the debounced push, a
  // status query), so a burst of applies costs one rebuild and `apply` never waits for one.
  let stale = false;
  const currentView = (): ResourceView => {
    if (!stale) return view;
    stale = false;
    const started = performance.now();
    try {
      view = buildResourceView(snapshotInput());
      viewBuild.observe((performance.now() - started) / 1000);
    } catch (err) {
      // A conversion bug must not take the push down: clients keep the last good view.
      opts.log.error({ err }, "building the xDS snapshot failed; keeping the previous one");
    }
    return view;
  };
  const rebuild = (): void => {
    stale = true;
    xds.changed();
  };
  config.onChange(rebuild);
  revocations.onChange(rebuild);
  const grpc = new ControlPlaneGrpcServer({
    ca,
    config,
    joinTokens,
    revocations,
    log: opts.log,
    metrics,
    serverSans,
    xdsHandler: xds.handle,
  });
  grpcRef.server = grpc;
  const admin = new AdminApi({
    token,
    ca,
    config,
    joinTokens,
    revocations,
    metrics,
    log: opts.log,
    onBundleChange: () => grpc.refreshCredentials(),
    proxyStatus: () => xds.status(),
    acksFor: (kind, namespace, name) => {
      // Which pushed resource carries this one: policies become Authorizations, Pods and
      // Services become Addresses; other kinds are not pushed on their own.
      const pushed =
        kind === "AuthorizationPolicy"
          ? { typeUrl: AUTHORIZATION_TYPE_URL, name: `${namespace}/${name}` }
          : kind === "Pod"
            ? { typeUrl: ADDRESS_TYPE_URL, name: podUid(DEFAULT_CLUSTER_ID, namespace ?? "default", name) }
            : kind === "Service"
              ? { typeUrl: ADDRESS_TYPE_URL, name: `${namespace}/${name}.${namespace}.svc.cluster.local` }
              : undefined;
      const current = pushed && currentView().get(pushed.typeUrl)?.get(pushed.name);
      return current ? xds.resourceStatus(pushed.typeUrl, pushed.name, current.version).acked : undefined;
    },
  });
  const grpcPort = await grpc.listen(opts.grpc.host, opts.grpc.port);
  const adminPort = await admin.listen(opts.admin.host, opts.admin.port);
  opts.log.info(
    { grpcPort, adminPort, trustDomain: opts.trustDomain, stateDir: opts.stateDir },
    "control plane started",
  );
  return {
    grpcPort,
    adminPort,
    ca,
    close: async () => {
      config.close();
      xds.close();
      await Promise.all([grpc.close(), admin.close()]);
      await ca.close();
    },
  };
}
