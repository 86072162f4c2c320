// networking.istio.io: ServiceEntry, WorkloadEntry, DestinationRule, VirtualService. PLACEHOLDER.
import { z } from "zod";

export const serviceEntrySpec = z.looseObject({});
export const workloadEntrySpec = z.looseObject({});
export const destinationRuleSpec = z.looseObject({});
export const virtualServiceSpec = z.looseObject({});
export type ServiceEntrySpec = z.infer<typeof serviceEntrySpec>;
export type WorkloadEntrySpec = z.infer<typeof workloadEntrySpec>;
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpec>;
export type VirtualServiceSpec = z.infer<typeof virtualServiceSpec>;
