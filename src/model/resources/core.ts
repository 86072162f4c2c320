// v1 Namespace, Pod (the subset a mesh needs), Service. PLACEHOLDER: completed in this change.
import { z } from "zod";

export const namespaceSpec = z.strictObject({ finalizers: z.array(z.string()).optional() });
export const podSpec = z.looseObject({});
export const serviceSpec = z.looseObject({});
export type NamespaceSpec = z.infer<typeof namespaceSpec>;
export type PodSpec = z.infer<typeof podSpec>;
export type ServiceSpec = z.infer<typeof serviceSpec>;
