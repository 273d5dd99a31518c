import type { DesiredLRPResponse } from "../gen/diego/v1/lrp_pb.js";

// The `cf-router` entries of a DesiredLRP's routes (reference 1.6, 9.1): each
// `{"hostnames": [...], "port": <container port>, "route_service_url": "..."}`. Routes are
// stored verbatim, so anything may be there: an unparsable value is ignored, as the 2015
// route-emitter did, and the last entry wins when two share a port.

export const CF_ROUTER = "cf-router";

export interface CfRoute {
  /** Lower case: Host matching is case-insensitive. */
  hostnames: string[];
  containerPort: number;
  routeServiceUrl: string;
}

const isPort = (p: unknown): p is number => Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 65535;

function entryOf(raw: unknown): CfRoute | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const e = raw as { hostnames?: unknown; port?: unknown; route_service_url?: unknown };
  if (!isPort(e.port) || !Array.isArray(e.hostnames)) return undefined;
  const hostnames = [...new Set(e.hostnames.filter((h): h is string => typeof h === "string" && h !== "").map(normalizeHost))];
  const routeServiceUrl = typeof e.route_service_url === "string" ? e.route_service_url : "";
  return { hostnames, containerPort: e.port, routeServiceUrl };
}

/** A hostname as the table keys it: lower case, without a trailing dot. */
export const normalizeHost = (h: string): string => h.toLowerCase().replace(/\.$/, "");

/** The DesiredLRP's cf-router routes, one per container port. */
export function cfRoutesOf(d: DesiredLRPResponse): CfRoute[] {
  const text = d.routes?.entries[CF_ROUTER];
  if (text === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const byPort = new Map<number, CfRoute>();
  for (const raw of parsed) {
    const e = entryOf(raw);
    if (e) byPort.set(e.containerPort, e);
  }
  return [...byPort.values()];
}
