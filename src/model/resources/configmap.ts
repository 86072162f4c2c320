// v1 ConfigMap, accepted for one purpose only: Istio's mesh configuration, the ConfigMap `istio` in
// the root namespace whose `data.mesh` holds a MeshConfig (Ambit reads its ext_authz
// `extensionProviders`). Any other ConfigMap is rejected with a clear error rather than stored and
// silently ignored: Ambit runs no applications that could read one, and a misnamed mesh config
// would otherwise fail without a word. Pure.
import { z } from "zod";
import { parseMeshConfig } from "./mesh-config.js";

/** Where Istio (and Ambit) read the MeshConfig from: the root namespace's ConfigMap `istio`. */
export const MESH_CONFIG_NAMESPACE = "istio-system";
export const MESH_CONFIG_NAME = "istio";
/** The data keys Istio's `istio` ConfigMap carries; `meshNetworks` is accepted and not used. */
export const MESH_CONFIG_KEYS: readonly string[] = ["mesh", "meshNetworks"];

export const configMapData = z.record(z.string(), z.string());
export type ConfigMapData = z.infer<typeof configMapData>;

/** A problem with a field path relative to the ConfigMap document ("data.mesh.extensionProviders[0]..."). */
export interface ConfigMapProblem {
  path: string;
  message: string;
  code: "AMBIT_E_INVALID_VALUE" | "AMBIT_E_UNKNOWN_FIELD";
}

const MESH_SOURCE = "mesh";
const PATH_HEAD = /^([A-Za-z_][\w.\-[\]"]*): ([\s\S]*)$/;

/** Problems of a MeshConfig text, each split into its field path inside the text and a message. */
export function meshConfigFieldProblems(text: string): { path: string; message: string }[] {
  return parseMeshConfig(text, MESH_SOURCE).problems.map((p) => {
    const rest = p.startsWith(`${MESH_SOURCE}: `) ? p.slice(MESH_SOURCE.length + 2) : p;
    const m = PATH_HEAD.exec(rest);
    return m ? { path: m[1] ?? "", message: m[2] ?? "" } : { path: "", message: rest };
  });
}

/** What is wrong with a ConfigMap beyond its shape: which one it is, its keys, its MeshConfig. */
export function configMapProblems(name: string, namespace: string, data: ConfigMapData): ConfigMapProblem[] {
  const out: ConfigMapProblem[] = [];
  const where = `${MESH_CONFIG_NAMESPACE}/${MESH_CONFIG_NAME}`;
  if (name !== MESH_CONFIG_NAME) {
    out.push({
      code: "AMBIT_E_INVALID_VALUE",
      path: "metadata.name",
      message: `Ambit accepts only the mesh configuration ConfigMap ${where} (MeshConfig in data.mesh); a ConfigMap named "${name}" would have no effect`,
    });
    return out;
  }
  if (namespace !== MESH_CONFIG_NAMESPACE) {
    out.push({
      code: "AMBIT_E_INVALID_VALUE",
      path: "metadata.namespace",
      message: `the mesh configuration ConfigMap must be in the root namespace ${MESH_CONFIG_NAMESPACE}, not "${namespace}"`,
    });
    return out;
  }
  for (const key of Object.keys(data)) {
    if (!MESH_CONFIG_KEYS.includes(key))
      out.push({
        code: "AMBIT_E_UNKNOWN_FIELD",
        path: `data.${key}`,
        message: `unknown key "${key}" (the istio ConfigMap holds ${MESH_CONFIG_KEYS.join(" and ")})`,
      });
  }
  const mesh = data.mesh;
  if (mesh !== undefined) {
    for (const p of meshConfigFieldProblems(mesh))
      out.push({
        code: p.message === "unknown field" ? "AMBIT_E_UNKNOWN_FIELD" : "AMBIT_E_INVALID_VALUE",
        path: p.path ? `data.mesh.${p.path}` : "data.mesh",
        message: p.message,
      });
  }
  return out;
}
