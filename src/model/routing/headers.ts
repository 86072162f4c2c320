// Header modifiers applied to a header map (lower-case names) in Envoy's order: remove, then
// set (replace every value), then add (append).
import type { HeaderModifier } from "./types.js";

export function applyHeaderModifier(headers: Map<string, string[]>, mod: HeaderModifier | undefined): void {
  if (!mod) return;
  for (const name of mod.remove) headers.delete(name);
  for (const { name, value } of mod.set) headers.set(name, [value]);
  for (const { name, value } of mod.add) {
    const prev = headers.get(name);
    if (prev) prev.push(value);
    else headers.set(name, [value]);
  }
}
