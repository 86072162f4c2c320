// The encoded resources every data-plane client is served: the converted snapshot as Any values
// with content-hash versions, rebuilt once per config change (not per client or per push).
import { createHash } from "node:crypto";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  encodeAny,
  REVOCATION_LIST_TYPE_URL,
} from "../../api/xds-types.js";
import { buildSnapshot, type SnapshotInput } from "./convert.js";
import type { ResourceView, VersionedResource } from "./state.js";

function encodeAll(typeUrl: string, messages: ReadonlyMap<string, object>): Map<string, VersionedResource> {
  const out = new Map<string, VersionedResource>();
  for (const [name, message] of messages) {
    const any = encodeAny(typeUrl, message);
    const version = createHash("sha256").update(any.value).digest("hex").slice(0, 16);
    out.set(name, { name, version, resource: { typeUrl, value: any.value } });
  }
  return out;
}

export function buildResourceView(input: SnapshotInput): ResourceView {
  const s = buildSnapshot(input);
  return new Map([
    [ADDRESS_TYPE_URL, encodeAll(ADDRESS_TYPE_URL, s.addresses)],
    [AUTHORIZATION_TYPE_URL, encodeAll(AUTHORIZATION_TYPE_URL, s.authorizations)],
    [REVOCATION_LIST_TYPE_URL, encodeAll(REVOCATION_LIST_TYPE_URL, s.revocations)],
  ]);
}
