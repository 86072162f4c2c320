// ServiceEntry and WorkloadEntry: Istio-docs manifests load with Istio's defaults; resolution,
// endpoint, address and port rules are enforced with exact field paths.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { ServiceEntrySpec, WorkloadEntrySpec } from "../../../../src/model/resources/networking.js";
import {
  checkMistake,
  DELETE,
  loadValid,
  specOf,
  withChanges,
  type Manifest,
  type Mistake,
} from "./helpers.js";

const EXTERNAL_API = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-https
spec:
  hosts:
  - api.dropboxapi.com
  - www.googleapis.com
  location: MESH_EXTERNAL
  ports:
  - number: 443
    name: https
    protocol: TLS
  resolution: DNS
`;

const STATIC_VMS = `
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: external-svc-mongocluster
  namespace: vms
spec:
  hosts:
  - mymongodb.somedomain
  addresses:
  - 192.192.192.192/24
  ports:
  - number: 27018
    name: mongodb
    protocol: MONGO
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - address: 2.2.2.2
    ports: {mongodb: 27018}
    labels: {app: mongo}
  - address: 3.3.3.3
    locality: us-west1/zone-a
    weight: 10
  exportTo: [".", "istio-system"]
  subjectAltNames: ["spiffe://cluster.local/ns/vms/sa/mongo"]
`;

const SELECTOR_SE = `
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: details-svc
spec:
  hosts:
  - details.bookinfo.com
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: 8080
  resolution: STATIC
  workloadSelector:
    labels:
      app: details-legacy
`;

const WORKLOAD_ENTRY = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: details-svc
  namespace: bookinfo
spec:
  serviceAccount: details-legacy
  address: 2.2.2.2
  labels:
    app: details-legacy
    instance-id: vm1
  ports:
    http: 8080
  network: vm-network
  locality: us-east1/zone-b
  weight: 3
`;

describe("ServiceEntry", () => {
  test("an external HTTPS API (DNS resolution) loads; location and resolution kept", () => {
    const spec = specOf<ServiceEntrySpec>(EXTERNAL_API);
    assert.deepEqual(spec.hosts, ["api.dropboxapi.com", "www.googleapis.com"]);
    assert.equal(spec.resolution, "DNS");
    assert.equal(spec.location, "MESH_EXTERNAL");
  });

  test("STATIC endpoints with CIDR addresses and exportTo load", () => {
    const spec = specOf<ServiceEntrySpec>(STATIC_VMS);
    assert.equal(spec.endpoints?.length, 2);
    assert.equal(spec.endpoints?.[1]?.weight, 10);
  });

  test("defaults: location MESH_EXTERNAL, resolution NONE", () => {
    const spec = specOf<ServiceEntrySpec>(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: egress}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 80, name: http, protocol: http}]
`);
    assert.equal(spec.location, "MESH_EXTERNAL");
    assert.equal(spec.resolution, "NONE");
  });

  test("a workloadSelector ServiceEntry loads (its selector is written with `labels`)", () => {
    const spec = specOf<ServiceEntrySpec>(SELECTOR_SE);
    assert.deepEqual(spec.workloadSelector, { labels: { app: "details-legacy" } });
    assert.equal(loadValid(SELECTOR_SE).length, 1);
  });

  test("DNS resolution with wildcard hosts is fine when endpoints are given", () => {
    specOf<ServiceEntrySpec>(
      withChanges(parse(EXTERNAL_API) as Manifest, {
        "spec.hosts": ["*.googleapis.com"],
        "spec.endpoints": [{ address: "proxy.example.com" }],
      }),
    );
  });

  const base = parse(STATIC_VMS) as Manifest;
  const R = "ServiceEntry vms/external-svc-mongocluster";
  const mistakes: Mistake[] = [
    { name: "unknown field", set: { "spec.host": "x" }, code: "AMBIT_E_UNKNOWN_FIELD", path: "spec.host" },
    {
      name: "hosts missing",
      set: { "spec.hosts": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.hosts",
    },
    { name: "hosts empty", set: { "spec.hosts": [] }, code: "AMBIT_E_INVALID_VALUE", path: "spec.hosts" },
    {
      name: "hosts a string",
      set: { "spec.hosts": "a.com" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.hosts",
    },
    { name: "host '*'", set: { "spec.hosts": ["*"] }, code: "AMBIT_E_INVALID_VALUE", path: "spec.hosts[0]" },
    {
      name: "host with bad label",
      set: { "spec.hosts[0]": "my_mongo.db" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hosts[0]",
    },
    {
      name: "malformed CIDR",
      set: { "spec.addresses[0]": "192.192.192.192/33" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.addresses[0]",
    },
    {
      name: "address not an IP",
      set: { "spec.addresses[0]": "mongo.local" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.addresses[0]",
    },
    {
      name: "CIDR with DNS resolution",
      set: { "spec.resolution": "DNS" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.addresses[0]",
    },
    {
      name: "bad resolution",
      set: { "spec.resolution": "STATIC_DNS" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.resolution",
    },
    {
      name: "bad location",
      set: { "spec.location": "EXTERNAL" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.location",
    },
    {
      name: "port number out of range",
      set: { "spec.ports[0].number": 70000 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].number",
    },
    {
      name: "port name missing",
      set: { "spec.ports[0].name": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.ports[0].name",
    },
    {
      name: "port name with '_'",
      set: { "spec.ports[0].name": "mongo_db", "spec.endpoints[0].ports": DELETE },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].name",
    },
    {
      name: "unknown protocol",
      set: { "spec.ports[0].protocol": "SMTP" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].protocol",
    },
    {
      name: "targetPort 0",
      set: { "spec.ports[0].targetPort": 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].targetPort",
    },
    {
      name: "duplicate port number",
      set: { "spec.ports[1]": { number: 27018, name: "other", protocol: "TCP" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[1].number",
    },
    {
      name: "duplicate port name",
      set: { "spec.ports[1]": { number: 27019, name: "mongodb", protocol: "TCP" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[1].name",
    },
    {
      name: "STATIC endpoint with a host name",
      set: { "spec.endpoints[0].address": "mongo.local" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.endpoints[0].address",
    },
    {
      name: "endpoint without address",
      set: { "spec.endpoints[0].address": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.endpoints[0].address",
    },
    {
      name: "endpoint port not declared",
      set: { "spec.endpoints[0].ports": { mongo: 27018 } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.endpoints[0].ports.mongo",
    },
    {
      name: "endpoint port out of range",
      set: { "spec.endpoints[0].ports.mongodb": 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.endpoints[0].ports.mongodb",
    },
    {
      name: "endpoint label invalid",
      set: { "spec.endpoints[0].labels.app": "mongo db" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.endpoints[0].labels.app",
    },
    {
      name: "unknown endpoint field",
      set: { "spec.endpoints[0].ip": "1.1.1.1" },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.endpoints[0].ip",
    },
    {
      name: "weight negative",
      set: { "spec.endpoints[1].weight": -1 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.endpoints[1].weight",
    },
    {
      name: "workloadSelector written with matchLabels",
      set: { "spec.endpoints": DELETE, "spec.workloadSelector": { matchLabels: { app: "x" } } },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.workloadSelector.matchLabels",
    },
    {
      name: "endpoints and workloadSelector together",
      set: { "spec.workloadSelector": { labels: { app: "x" } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.workloadSelector",
    },
    {
      name: "resolution NONE with endpoints",
      set: { "spec.resolution": "NONE", "spec.addresses": ["192.192.192.192"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.endpoints",
    },
    {
      name: "DNS_ROUND_ROBIN with two endpoints",
      set: { "spec.resolution": "DNS_ROUND_ROBIN", "spec.addresses": DELETE },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.endpoints",
    },
    {
      name: "DNS with a wildcard host and no endpoints",
      set: {
        "spec.resolution": "DNS",
        "spec.addresses": DELETE,
        "spec.endpoints": DELETE,
        "spec.hosts": ["*.somedomain"],
      },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.hosts[0]",
    },
    {
      name: "several hosts on a plain TCP port",
      set: { "spec.hosts[1]": "other.somedomain" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].protocol",
    },
    {
      name: "exportTo '~' with others",
      set: { "spec.exportTo": ["~", "."] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.exportTo",
    },
    {
      name: "exportTo bad namespace",
      set: { "spec.exportTo": ["Not_A_Namespace"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.exportTo[0]",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(base, R, m));
});

describe("WorkloadEntry", () => {
  test("a VM workload entry loads", () => {
    const spec = specOf<WorkloadEntrySpec>(WORKLOAD_ENTRY);
    assert.equal(spec.address, "2.2.2.2");
    assert.deepEqual(spec.ports, { http: 8080 });
    assert.equal(spec.serviceAccount, "details-legacy");
  });

  test("a DNS name, a unix socket, or only a network are valid addresses", () => {
    const base = parse(WORKLOAD_ENTRY) as Manifest;
    specOf(withChanges(base, { "spec.address": "vm1.example.com" }));
    specOf(withChanges(base, { "spec.address": "unix:///var/run/app.sock", "spec.ports": DELETE }));
    specOf(withChanges(base, { "spec.address": DELETE }));
  });

  const base = parse(WORKLOAD_ENTRY) as Manifest;
  const R = "WorkloadEntry bookinfo/details-svc";
  const mistakes: Mistake[] = [
    { name: "unknown field", set: { "spec.ip": "1.1.1.1" }, code: "AMBIT_E_UNKNOWN_FIELD", path: "spec.ip" },
    {
      name: "no address and no network",
      set: { "spec.address": DELETE, "spec.network": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.address",
    },
    {
      name: "address neither IP nor name",
      set: { "spec.address": "2.2.2.2.2:80" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.address",
    },
    {
      name: "unix socket with ports",
      set: { "spec.address": "unix:///var/run/app.sock" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports",
    },
    {
      name: "relative unix socket",
      set: { "spec.address": "unix://app.sock", "spec.ports": DELETE },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.address",
    },
    {
      name: "ports as a list",
      set: { "spec.ports": [8080] },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.ports",
    },
    {
      name: "port out of range",
      set: { "spec.ports.http": 65536 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports.http",
    },
    {
      name: "port name invalid",
      set: { "spec.ports": { "http port": 80 } },
      code: "AMBIT_E_INVALID_VALUE",
      path: 'spec.ports["http port"]',
    },
    {
      name: "label key invalid",
      set: { "spec.labels": { "-app": "x" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: 'spec.labels["-app"]',
    },
    {
      name: "weight as string",
      set: { "spec.weight": "3" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.weight",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(base, R, m));
});
