// v1 Namespace, Pod and Service: real manifests load with Kubernetes' defaults; each kind of
// mistake is reported with its code, field path, resource and document.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import type { NamespaceSpec, PodSpec, ServiceSpec } from "../../../../src/model/resources/core.js";
import {
  assertProblems,
  checkMistake,
  DELETE,
  load,
  loadValid,
  specOf,
  withChanges,
  type Manifest,
  type Mistake,
} from "./helpers.js";

const NAMESPACE = `
apiVersion: v1
kind: Namespace
metadata:
  name: bookinfo
  labels:
    istio.io/dataplane-mode: ambient
    istio.io/use-waypoint: waypoint
`;

const POD = `
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1-6f9d5b7c4-x2x9z
  namespace: bookinfo
  labels:
    app: reviews
    version: v1
  annotations:
    kubectl.kubernetes.io/default-container: reviews
spec:
  serviceAccountName: bookinfo-reviews
  nodeName: node-1
  containers:
  - name: reviews
    image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.3
    imagePullPolicy: IfNotPresent
    env:
    - name: LOG_DIR
      value: /tmp/logs
    ports:
    - containerPort: 9080
      name: http
    volumeMounts:
    - name: tmp
      mountPath: /tmp
    securityContext:
      runAsUser: 1000
    resources:
      requests: {cpu: 100m, memory: 128Mi}
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, "true"]
  volumes:
  - name: tmp
    emptyDir: {}
  tolerations:
  - key: node.kubernetes.io/not-ready
    operator: Exists
    effect: NoExecute
    tolerationSeconds: 300
  affinity:
    nodeAffinity: {}
  nodeSelector:
    kubernetes.io/os: linux
  securityContext:
    fsGroup: 2000
  hostNetwork: false
  dnsPolicy: ClusterFirst
  priorityClassName: high
  imagePullSecrets:
  - name: registry
  topologySpreadConstraints: []
  enableServiceLinks: false
  os: {name: linux}
  overhead: {cpu: 250m}
`;

const SERVICE = `
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: bookinfo
  labels:
    app: reviews
    service: reviews
spec:
  selector:
    app: reviews
  ports:
  - port: 9080
    name: http
`;

const pod = parse(POD) as Manifest;
const service = parse(SERVICE) as Manifest;
const namespace = parse(NAMESPACE) as Manifest;

describe("Namespace", () => {
  test("an ambient namespace loads; it is cluster-scoped (no namespace)", () => {
    const [ns] = loadValid(NAMESPACE);
    assert.equal(ns?.kind, "Namespace");
    assert.equal(ns?.metadata.namespace, undefined);
    assert.equal(ns?.metadata.labels?.["istio.io/dataplane-mode"], "ambient");
    assert.deepEqual(ns?.spec, {});
  });

  test("spec.finalizers is accepted", () => {
    assert.deepEqual(
      specOf<NamespaceSpec>(withChanges(namespace, { "spec.finalizers": ["kubernetes"] })).finalizers,
      ["kubernetes"],
    );
  });

  const mistakes: Mistake[] = [
    {
      name: "unknown spec field",
      set: { "spec.owner": "me" },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.owner",
    },
    {
      name: "finalizers not a list",
      set: { "spec.finalizers": "kubernetes" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.finalizers",
    },
    {
      name: "upper-case name",
      set: { "metadata.name": "BookInfo" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "metadata.name",
    },
    {
      name: "label value with a space",
      set: { "metadata.labels.team": "book info" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "metadata.labels.team",
    },
  ];
  for (const m of mistakes) {
    test(`mistake: ${m.name}`, () =>
      checkMistake(namespace, m.name === "upper-case name" ? "Namespace BookInfo" : "Namespace bookinfo", m));
  }
});

describe("Pod", () => {
  test("a full pod manifest (all PodSpec sections) loads unchanged", () => {
    const spec = specOf<PodSpec>(POD);
    assert.equal(spec.serviceAccountName, "bookinfo-reviews");
    assert.equal(spec.nodeName, "node-1");
    assert.deepEqual(spec.containers?.[0]?.ports, [{ containerPort: 9080, name: "http", protocol: "TCP" }]);
    // Container internals pass through as written.
    assert.equal((spec.containers?.[0] as Record<string, unknown>).imagePullPolicy, "IfNotPresent");
  });

  test("Kubernetes defaults: service account, restart policy, DNS policy, grace period, scheduler", () => {
    const spec = specOf<PodSpec>(`
apiVersion: v1
kind: Pod
metadata: {name: sleep}
spec:
  containers: [{name: sleep, image: curlimages/curl}]
`);
    assert.equal(spec.serviceAccountName, "default");
    assert.equal(spec.restartPolicy, "Always");
    assert.equal(spec.dnsPolicy, "ClusterFirst");
    assert.equal(spec.terminationGracePeriodSeconds, 30);
    assert.equal(spec.schedulerName, "default-scheduler");
  });

  test("a pod without spec (Ambit's lab assigns the rest) gets the defaults", () => {
    const [p] = loadValid("apiVersion: v1\nkind: Pod\nmetadata: {name: w1, namespace: ns1}\n");
    assert.equal((p?.spec as PodSpec).serviceAccountName, "default");
    assert.equal(p?.metadata.namespace, "ns1");
  });

  test("the deprecated serviceAccount fills serviceAccountName", () => {
    const spec = specOf<PodSpec>(
      withChanges(pod, { "spec.serviceAccountName": DELETE, "spec.serviceAccount": "legacy" }),
    );
    assert.equal(spec.serviceAccountName, "legacy");
  });

  const R = "Pod bookinfo/reviews-v1-6f9d5b7c4-x2x9z";
  const mistakes: Mistake[] = [
    {
      name: "unknown PodSpec field",
      set: { "spec.hostNetworking": true },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.hostNetworking",
    },
    {
      name: "boolean as string",
      set: { "spec.hostNetwork": "yes" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.hostNetwork",
    },
    {
      name: "containers as an object",
      set: { "spec.containers": { name: "x" } },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.containers",
    },
    {
      name: "tolerations as a string",
      set: { "spec.tolerations": "all" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.tolerations",
    },
    {
      name: "affinity as a list",
      set: { "spec.affinity": [] },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.affinity",
    },
    {
      name: "bad restartPolicy",
      set: { "spec.restartPolicy": "Sometimes" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.restartPolicy",
    },
    {
      name: "fractional grace period",
      set: { "spec.terminationGracePeriodSeconds": 1.5 },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.terminationGracePeriodSeconds",
    },
    {
      name: "node name with '_'",
      set: { "spec.nodeName": "node_1" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.nodeName",
    },
    {
      name: "service account upper case",
      set: { "spec.serviceAccountName": "Reviews" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.serviceAccountName",
    },
    {
      name: "containerPort out of range",
      set: { "spec.containers[0].ports[0].containerPort": 70000 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.containers[0].ports[0].containerPort",
    },
    {
      name: "containerPort missing",
      set: { "spec.containers[0].ports[0].containerPort": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.containers[0].ports[0].containerPort",
    },
    {
      name: "containerPort as string",
      set: { "spec.containers[0].ports[0].containerPort": "9080" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.containers[0].ports[0].containerPort",
    },
    {
      name: "port protocol HTTP",
      set: { "spec.containers[0].ports[0].protocol": "HTTP" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.containers[0].ports[0].protocol",
    },
    {
      name: "port name not an IANA service name",
      set: { "spec.containers[0].ports[0].name": "http_port" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.containers[0].ports[0].name",
    },
    {
      name: "unknown field in a container port",
      set: { "spec.containers[0].ports[0].port": 80 },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.containers[0].ports[0].port",
    },
    {
      name: "duplicate container port names",
      set: { "spec.containers[0].ports[1]": { containerPort: 9090, name: "http" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.containers[0].ports[1].name",
    },
    {
      name: "container without name",
      set: { "spec.containers[0].name": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.containers[0].name",
    },
    {
      name: "container name shared with an init container",
      set: { "spec.initContainers[0].name": "reviews" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.initContainers[0].name",
    },
    {
      name: "label value too long",
      set: { "metadata.labels.app": "x".repeat(64) },
      code: "AMBIT_E_INVALID_VALUE",
      path: "metadata.labels.app",
    },
    {
      name: "bad os name",
      set: { "spec.os.name": "plan9" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.os.name",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(pod, R, m));
});

describe("Service", () => {
  test("the bookinfo reviews service loads with Kubernetes' defaults", () => {
    const spec = specOf<ServiceSpec>(SERVICE);
    assert.equal(spec.type, "ClusterIP");
    assert.equal(spec.sessionAffinity, "None");
    assert.equal(spec.internalTrafficPolicy, "Cluster");
    assert.equal(spec.externalTrafficPolicy, undefined);
    assert.deepEqual(spec.ports, [{ name: "http", port: 9080, protocol: "TCP", targetPort: 9080 }]);
  });

  test("targetPort as a name, several named ports, the same number on TCP and UDP", () => {
    const spec = specOf<ServiceSpec>(`
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: dns-tcp, appProtocol: kubernetes.io/h2c}
`);
    assert.equal(spec.ports?.[1]?.targetPort, "dns-tcp");
    assert.equal(spec.clusterIP, "10.96.0.10");
  });

  test("headless services need no ports; ExternalName needs no ports and gets no traffic policy", () => {
    assert.deepEqual(
      specOf<ServiceSpec>(withChanges(service, { "spec.ports": DELETE, "spec.clusterIP": "None" })).ports,
      undefined,
    );
    const ext = specOf<ServiceSpec>(
      withChanges(service, {
        "spec.ports": DELETE,
        "spec.selector": DELETE,
        "spec.type": "ExternalName",
        "spec.externalName": "api.example.com",
      }),
    );
    assert.equal(ext.internalTrafficPolicy, undefined);
  });

  test("NodePort and LoadBalancer default externalTrafficPolicy; ClientIP affinity gets a timeout", () => {
    const lb = specOf<ServiceSpec>(
      withChanges(service, {
        "spec.type": "LoadBalancer",
        "spec.sessionAffinity": "ClientIP",
        "spec.ports[0].nodePort": 30080,
        "spec.loadBalancerSourceRanges": ["10.0.0.0/8"],
      }),
    );
    assert.equal(lb.externalTrafficPolicy, "Cluster");
    assert.deepEqual(lb.sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } });
  });

  const R = "Service bookinfo/reviews";
  const mistakes: Mistake[] = [
    { name: "unknown field", set: { "spec.portz": [] }, code: "AMBIT_E_UNKNOWN_FIELD", path: "spec.portz" },
    {
      name: "unknown port field",
      set: { "spec.ports[0].containerPort": 1 },
      code: "AMBIT_E_UNKNOWN_FIELD",
      path: "spec.ports[0].containerPort",
    },
    {
      name: "port 0",
      set: { "spec.ports[0].port": 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].port",
    },
    {
      name: "port 65536",
      set: { "spec.ports[0].port": 65536 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].port",
    },
    {
      name: "port as string",
      set: { "spec.ports[0].port": "9080" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.ports[0].port",
    },
    {
      name: "port missing",
      set: { "spec.ports[0].port": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.ports[0].port",
    },
    {
      name: "ports missing",
      set: { "spec.ports": DELETE },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.ports",
    },
    {
      name: "protocol HTTP",
      set: { "spec.ports[0].protocol": "HTTP" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].protocol",
    },
    {
      name: "port name upper case",
      set: { "spec.ports[0].name": "HTTP" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].name",
    },
    {
      name: "second port unnamed",
      set: { "spec.ports[1]": { port: 9443 } },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.ports[1].name",
    },
    {
      name: "duplicate port names",
      set: { "spec.ports[1]": { port: 9443, name: "http" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[1].name",
    },
    {
      name: "duplicate port/protocol",
      set: { "spec.ports[1]": { port: 9080, name: "http2" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[1].port",
    },
    {
      name: "targetPort out of range",
      set: { "spec.ports[0].targetPort": 0 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].targetPort",
    },
    {
      name: "targetPort name too long",
      set: { "spec.ports[0].targetPort": "a-very-long-port-name" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].targetPort",
    },
    {
      name: "targetPort a boolean",
      set: { "spec.ports[0].targetPort": true },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.ports[0].targetPort",
    },
    { name: "bad type", set: { "spec.type": "Internal" }, code: "AMBIT_E_INVALID_VALUE", path: "spec.type" },
    {
      name: "ExternalName without externalName",
      set: { "spec.type": "ExternalName" },
      code: "AMBIT_E_MISSING_FIELD",
      path: "spec.externalName",
    },
    {
      name: "ExternalName with an IP",
      set: { "spec.type": "ExternalName", "spec.externalName": "10.0.0.1" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.externalName",
    },
    {
      name: "malformed clusterIP",
      set: { "spec.clusterIP": "10.0.0.300" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.clusterIP",
    },
    {
      name: "clusterIPs disagree",
      set: { "spec.clusterIP": "10.0.0.1", "spec.clusterIPs": ["10.0.0.2"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.clusterIPs[0]",
    },
    {
      name: "selector label value",
      set: { "spec.selector.app": "-reviews" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.selector.app",
    },
    {
      name: "selector label key",
      set: { "spec.selector": { "my app": "x" } },
      code: "AMBIT_E_INVALID_VALUE",
      path: 'spec.selector["my app"]',
    },
    {
      name: "selector as a list",
      set: { "spec.selector": ["app=reviews"] },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.selector",
    },
    {
      name: "nodePort on ClusterIP",
      set: { "spec.ports[0].nodePort": 30080 },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ports[0].nodePort",
    },
    {
      name: "externalIPs not an IP",
      set: { "spec.externalIPs": ["example.com"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.externalIPs[0]",
    },
    {
      name: "malformed CIDR in loadBalancerSourceRanges",
      set: { "spec.type": "LoadBalancer", "spec.loadBalancerSourceRanges": ["10.0.0.0/33"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.loadBalancerSourceRanges[0]",
    },
    {
      name: "externalTrafficPolicy on ClusterIP",
      set: { "spec.externalTrafficPolicy": "Local" },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.externalTrafficPolicy",
    },
    {
      name: "bad IP family",
      set: { "spec.ipFamilies": ["IPv5"] },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.ipFamilies[0]",
    },
    {
      name: "affinity config without ClientIP",
      set: { "spec.sessionAffinityConfig": { clientIP: { timeoutSeconds: 60 } } },
      code: "AMBIT_E_INVALID_VALUE",
      path: "spec.sessionAffinityConfig",
    },
    {
      name: "publishNotReadyAddresses as string",
      set: { "spec.publishNotReadyAddresses": "true" },
      code: "AMBIT_E_INVALID_TYPE",
      path: "spec.publishNotReadyAddresses",
    },
  ];
  for (const m of mistakes) test(`mistake: ${m.name}`, () => checkMistake(service, R, m));

  test("a Service without spec is reported as missing spec", () => {
    assertProblems(load("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"), [
      { code: "AMBIT_E_MISSING_FIELD", path: "spec", resource: "Service default/s", index: 0 },
    ]);
  });
});
