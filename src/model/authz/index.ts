// The authorization engine's public face: compile policies once, decide requests many times.
// Pure: no I/O, no timers, no exceptions on the decision path.
export { authorize } from "./evaluate.js";
export {
  compilePolicySet,
  DEFAULT_ROOT_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  type PolicySet,
  type PolicySetInput,
} from "./compile.js";
export { parseAuthzRequest, type ParseResult } from "./request.js";
export { normalizePath } from "./path.js";
export { effectiveMtls, type MtlsVerdict } from "./peer-authn.js";
export type * from "./types.js";
export {
  authorizeWire,
  compileWirePolicies,
  type WireAuthorization,
  type WireConnection,
  type WireMatch,
  type WirePolicySet,
} from "./wire.js";
