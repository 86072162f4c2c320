// One Prometheus registry per process (prom-client), so every component registers its metrics in
// the same place and the admin endpoint serves them all.
import { collectDefaultMetrics, Registry } from "prom-client";

export function createRegistry(processName: string, withDefaults = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ ambit_process: processName });
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return registry;
}
