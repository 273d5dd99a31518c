import {
  ActualLRPSchema,
  DesiredLRPCreateRequestSchema,
  DesiredLRPResponseSchema,
  DesiredLRPUpdateRequestSchema,
  WatchLRPsResponseSchema,
  type ActualLRP,
  type DesiredLRPCreateRequest,
  type DesiredLRPResponse,
  type DesiredLRPUpdateRequest,
  type WatchLRPsResponse,
} from "../gen/diego/v1/lrp_pb.js";
import { jsonReaderFor, jsonWriterFor } from "./compile-json.js";
import { markEmptyPorts } from "./validate-rules.js";

// The REST JSON of LRPs, as the 2015 receptor wrote it, generated from the descriptors like the
// tasks' (compile-json.ts; where it differs from protobuf JSON: json-rules.ts). Nothing here
// names a field but egress rules' `"ports": []` (protobuf cannot tell it from no ports).

const readCreate = jsonReaderFor<DesiredLRPCreateRequest>(DesiredLRPCreateRequestSchema);
const readUpdate = jsonReaderFor<DesiredLRPUpdateRequest>(DesiredLRPUpdateRequestSchema);

/** A parsed POST /v1/desired_lrps body; every wrong JSON type is one InvalidJSON. */
export function decodeDesiredLRPCreateRequest(json: unknown): DesiredLRPCreateRequest {
  const req = readCreate(json);
  const rules = (json as { egress_rules?: unknown }).egress_rules;
  if (Array.isArray(rules)) {
    rules.forEach((raw: unknown, i) => {
      const ports = (raw as { ports?: unknown } | null)?.ports;
      const rule = req.egressRules[i];
      if (rule && Array.isArray(ports) && ports.length === 0) markEmptyPorts(rule);
    });
  }
  return req;
}

/** A parsed PUT /v1/desired_lrps/:guid body. */
export const decodeDesiredLRPUpdateRequest = (json: unknown): DesiredLRPUpdateRequest => readUpdate(json);

export const desiredLRPToJson: (lrp: DesiredLRPResponse) => string = jsonWriterFor(DesiredLRPResponseSchema);
export const actualLRPToJson: (lrp: ActualLRP) => string = jsonWriterFor(ActualLRPSchema);

/** A read of REST JSON back into a message (clients, tests). */
export const desiredLRPFromJson = jsonReaderFor<DesiredLRPResponse>(DesiredLRPResponseSchema);
export const actualLRPFromJson = jsonReaderFor<ActualLRP>(ActualLRPSchema);

/** The SSE event of an LRP change: 2015's event name (desired_lrp_created, ...) and its data. */
export interface LrpSse {
  name: string;
  data: string;
}

const eventWriters = new Map(
  WatchLRPsResponseSchema.oneofs[0]!.fields.map((f) => [f.localName, { name: f.name, write: jsonWriterFor(f.message!) }] as const),
);

export function lrpEventToSse(event: WatchLRPsResponse): LrpSse | undefined {
  const e = event.event;
  if (e.case === undefined) return undefined;
  const w = eventWriters.get(e.case)!;
  return { name: w.name, data: w.write(e.value) };
}
