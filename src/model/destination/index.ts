// The waypoint's destination model (PURE): DestinationRule lookup and the effective cluster
// policy (lookup.ts, policy.ts), load balancers and consistent-hash keys (balancers.ts), circuit
// breaking (connection-limits.ts) and passive outlier detection (outlier.ts). Time is passed in.
export * from "./policy.js";
export * from "./lookup.js";
export * from "./balancers.js";
export * from "./connection-limits.js";
export * from "./outlier.js";
export { xxhash64, xxhash64Hex } from "./xxhash.js";
