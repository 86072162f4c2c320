// A Delta xDS client for Ambit's data-plane processes: wildcard subscriptions, each resource
// validated alone (a bad one is NACKed and its last good version kept), reconnects with backoff
// announcing the versions it holds so only changes are resent.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../core/log.js";
import { anyTypeUrl, encodeAny, REJECTED_RESOURCE_TYPE_URL } from "./xds-types.js";

export interface XdsResource {
  version: string;
  resource: { typeUrl: string; value: Buffer };
}

export interface XdsClientCredentials {
  keyPem: string;
  certChainPem: string;
  rootsPem: string;
}

export interface DeltaXdsClientOptions {
  address: string;
  credentials: () => XdsClientCredentials;
  /** The ADS service constructor (from the loaded protos). */
  service: grpc.ServiceClientConstructor;
  typeUrls: readonly string[];
  /** Check one resource; return a reason to reject it. Must not throw. */
  validate(typeUrl: string, name: string, r: XdsResource): string | undefined;
  /** Called after each response with the resources now in force for that type. */
  onUpdate?(typeUrl: string, current: ReadonlyMap<string, XdsResource>, removed: readonly string[]): void;
  log: Logger;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

interface DeltaResponse {
  typeUrl?: string;
  nonce?: string;
  resources?: {
    name?: string;
    version?: string;
    resource?: { typeUrl?: string; type_url?: string; value?: Uint8Array };
  }[];
  removedResources?: string[];
}

export class DeltaXdsClient {
  private readonly current = new Map<string, Map<string, XdsResource>>();
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<unknown, unknown> | undefined;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Responses received (for tests and metrics). */
  received = { responses: 0, resources: 0, nacks: 0, connects: 0 };
  connected = false;

  constructor(private readonly opts: DeltaXdsClientOptions) {
    this.backoffMs = opts.initialBackoffMs ?? 500;
    for (const t of opts.typeUrls) this.current.set(t, new Map());
  }

  resources(typeUrl: string): ReadonlyMap<string, XdsResource> {
    return this.current.get(typeUrl) ?? new Map<string, XdsResource>();
  }

  start(): void {
    if (this.closed) return;
    const creds = this.opts.credentials();
    this.client?.close();
    this.client = new this.opts.service(
      this.opts.address,
      grpc.credentials.createSsl(
        Buffer.from(creds.rootsPem),
        Buffer.from(creds.keyPem),
        Buffer.from(creds.certChainPem),
      ),
    );
    const method = (
      this.client as unknown as Record<
        string,
        ((md?: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown>) | undefined
      >
    )["DeltaAggregatedResources"];
    if (!method) throw new Error("DeltaAggregatedResources missing from the loaded protos");
    const call = method.call(this.client);
    this.call = call;
    call.on("data", (res: DeltaResponse) => this.onResponse(call, res));
    call.on("error", (err: grpc.ServiceError) => this.onBroken(call, err.details || err.message));
    call.on("end", () => this.onBroken(call, "stream ended"));
    for (const typeUrl of this.opts.typeUrls) {
      const initialResourceVersions: Record<string, string> = {};
      for (const [name, r] of this.current.get(typeUrl) ?? []) initialResourceVersions[name] = r.version;
      call.write({ typeUrl, resourceNamesSubscribe: ["*"], initialResourceVersions });
    }
  }

  private onResponse(call: grpc.ClientDuplexStream<unknown, unknown>, res: DeltaResponse): void {
    if (call !== this.call) return;
    if (!this.connected) {
      this.connected = true;
      this.received.connects++;
      this.backoffMs = this.opts.initialBackoffMs ?? 500;
    }
    this.received.responses++;
    const typeUrl = res.typeUrl ?? "";
    const table = this.current.get(typeUrl);
    if (!table) {
      call.write({
        typeUrl,
        responseNonce: res.nonce,
        errorDetail: { code: 3, message: `not subscribed to ${typeUrl}` },
      });
      return;
    }
    const rejected: { name: string; reason: string }[] = [];
    for (const r of res.resources ?? []) {
      this.received.resources++;
      const name = r.name ?? "";
      const candidate: XdsResource = {
        version: r.version ?? "",
        resource: {
          typeUrl: r.resource ? anyTypeUrl(r.resource) : "",
          value: Buffer.from(r.resource?.value ?? []),
        },
      };
      const problem = name === "" ? "resource without a name" : this.opts.validate(typeUrl, name, candidate);
      if (problem) rejected.push({ name, reason: problem });
      else table.set(name, candidate); // a rejected resource keeps its last good version
    }
    const removed = res.removedResources ?? [];
    for (const name of removed) table.delete(name);
    if (rejected.length > 0) {
      this.received.nacks++;
      this.opts.log.warn({ typeUrl, rejected }, "xDS resources rejected; keeping their last good versions");
      call.write({
        typeUrl,
        responseNonce: res.nonce,
        errorDetail: {
          code: 3,
          message: rejected.map((r) => `${r.name}: ${r.reason}`).join("; "),
          details: rejected.map((r) => encodeAny(REJECTED_RESOURCE_TYPE_URL, r)),
        },
      });
    } else {
      call.write({ typeUrl, responseNonce: res.nonce });
    }
    this.opts.onUpdate?.(typeUrl, table, removed);
  }

  private onBroken(call: grpc.ClientDuplexStream<unknown, unknown>, reason: string): void {
    if (call !== this.call || this.closed) return;
    this.call = undefined;
    this.connected = false;
    const wait = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 30_000);
    this.opts.log.warn(
      { reason, retryInMs: Math.round(wait) },
      "xDS stream lost; serving the last good config",
    );
    this.retryTimer = setTimeout(() => this.start(), wait);
    this.retryTimer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.call?.cancel();
    this.client?.close();
  }
}
