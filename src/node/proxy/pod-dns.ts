// A pod's DNS proxy in capture mode: UDP and TCP on 15053 inside the pod (its port 53 is
// redirected there), answering the mesh's Service hostnames from the current snapshot and
// forwarding other names to the node's resolvers.
import type * as net from "node:net";
import type { Logger } from "../../core/log.js";
import { DnsProxy, dnsTableOf, type DnsTable } from "./dns.js";
import type { MeshSnapshot } from "./mesh.js";
import type { LocalPod, PodNetwork } from "./network.js";

export interface PodDnsOptions {
  pod: LocalPod;
  namespace: string;
  port: number;
  network: PodNetwork;
  mesh: () => MeshSnapshot;
  upstream: { host: string; port: number }[];
  log: Logger;
}

/** One table per mesh snapshot, shared by every pod. */
const tables = new WeakMap<MeshSnapshot, DnsTable>();

function tableOf(mesh: MeshSnapshot): DnsTable {
  let t = tables.get(mesh);
  if (!t) {
    t = dnsTableOf([...mesh.services.values()].map((s) => ({ hostname: s.hostname, vips: s.vips })));
    tables.set(mesh, t);
  }
  return t;
}

export class PodDns {
  private constructor(
    private readonly proxy: DnsProxy,
    readonly tcp: net.Server,
  ) {}

  static async start(o: PodDnsOptions): Promise<PodDns> {
    if (!o.network.bindUdp) throw new Error("this pod network cannot bind UDP sockets in a pod");
    const proxy = new DnsProxy({
      table: () => tableOf(o.mesh()),
      podNamespace: o.namespace,
      upstream: o.upstream,
      onQuery: (e) => {
        if (e.answered === "error")
          o.log.debug({ pod: o.pod.ip, name: e.name }, "malformed or failed DNS query");
      },
    });
    const udp = await o.network.bindUdp(o.pod, o.port);
    proxy.serveUdp(udp);
    const tcp = await o.network.listen(o.pod, o.port, () => undefined);
    proxy.serveTcp(tcp);
    return new PodDns(proxy, tcp);
  }

  close(): void {
    this.proxy.close();
  }
}
