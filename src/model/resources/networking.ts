// networking.istio.io: ServiceEntry, WorkloadEntry, DestinationRule, VirtualService — the shapes of
// istio/api networking/v1 (served also as v1beta1 and v1alpha3), one module per kind.
export * from "./networking/shared.js";
export * from "./networking/service-entry.js";
export * from "./networking/load-balancer.js";
export * from "./networking/destination-rule.js";
export * from "./networking/virtual-service-http.js";
export * from "./networking/virtual-service.js";
