// gateway.networking.k8s.io: Gateway, HTTPRoute, GRPCRoute. PLACEHOLDER.
import { z } from "zod";

export const gatewaySpec = z.looseObject({});
export const httpRouteSpec = z.looseObject({});
export const grpcRouteSpec = z.looseObject({});
export type GatewaySpec = z.infer<typeof gatewaySpec>;
export type HTTPRouteSpec = z.infer<typeof httpRouteSpec>;
export type GRPCRouteSpec = z.infer<typeof grpcRouteSpec>;
