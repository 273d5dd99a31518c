import { create } from "@bufbuild/protobuf";
import { EnvironmentVariableSchema, type EnvironmentVariable } from "../../../src/gen/diego/v1/actions_pb.js";
import type { LrpInstanceSpec, PortMapping } from "./types.js";

// The environment of an instance's processes, in the 2015 order (reference 8.2): the image's,
// the four instance variables, PORT, the LRP's env; and for every run action (setup, action and
// monitor alike) the network variables after the action's own env, so they win.

/** Container-level "NAME=value" entries, image env first. */
export function containerEnv(spec: LrpInstanceSpec, imageEnv: string[]): string[] {
  const index = String(spec.index);
  const port = spec.ports[0];
  return [
    ...imageEnv,
    `INSTANCE_GUID=${spec.instanceGuid}`,
    `INSTANCE_INDEX=${index}`,
    `CF_INSTANCE_GUID=${spec.instanceGuid}`,
    `CF_INSTANCE_INDEX=${index}`,
    // The contract's PORT (CF set it in the LRP's env in 2015): the LRP's own env may replace it.
    ...(port === undefined ? [] : [`PORT=${port}`]),
    ...spec.env.map((e) => `${e.name}=${e.value}`),
  ];
}

/** CF_INSTANCE_IP, _PORT, _ADDR and _PORTS, appended to each run action's env. */
export function networkEnv(address: string, ports: PortMapping[]): EnvironmentVariable[] {
  const first = ports[0];
  const vars: Array<[string, string]> = [
    ["CF_INSTANCE_IP", address],
    ["CF_INSTANCE_PORT", first ? String(first.host_port) : ""],
    ["CF_INSTANCE_ADDR", first ? `${address}:${first.host_port}` : ""],
    ["CF_INSTANCE_PORTS", JSON.stringify(ports.map((p) => ({ external: p.host_port, internal: p.container_port })))],
  ];
  return vars.map(([name, value]) => create(EnvironmentVariableSchema, { name, value }));
}
