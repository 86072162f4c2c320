// gateway.networking.k8s.io: Gateway, HTTPRoute, GRPCRoute — the shapes of Gateway API v1 (served
// also as v1beta1), with the CRDs' defaults and validation rules; one module per kind.
export * from "./gateway/shared.js";
export * from "./gateway/gateway-spec.js";
export * from "./gateway/http-route.js";
export * from "./gateway/grpc-route.js";
