import type { Registration, TableChange } from "./route-table.js";

// The 2015 route-emitter's NATS messages (reference 9.2): one per (endpoint, routing key),
// carrying all hostnames of that key; `app`, `private_instance_id` and `route_service_url` are
// left out when empty.

export interface RegistryMessage {
  host: string;
  port: number;
  uris: string[];
  app?: string;
  private_instance_id?: string;
  route_service_url?: string;
}

export function registryMessage(r: Registration, uris: string[] = r.uris): RegistryMessage {
  const m: RegistryMessage = { host: r.host, port: r.port, uris };
  if (r.app) m.app = r.app;
  if (r.privateInstanceId) m.private_instance_id = r.privateInstanceId;
  if (r.routeServiceUrl) m.route_service_url = r.routeServiceUrl;
  return m;
}

export interface RegistryMessages {
  register: RegistryMessage[];
  unregister: RegistryMessage[];
}

const keyOf = (r: Registration): string => `${r.processGuid}\u0000${r.containerPort}\u0000${r.host}:${r.port}\u0000${r.privateInstanceId}`;

const sameRegistration = (a: Registration, b: Registration): boolean =>
  a.app === b.app && a.routeServiceUrl === b.routeServiceUrl && a.uris.length === b.uris.length && a.uris.every((u, i) => u === b.uris[i]);

/**
 * What to send for one change, as 2015's watcher did: new or changed endpoints are registered
 * with all their hostnames; hostnames an endpoint lost are unregistered from it; an endpoint
 * gone (or its route gone) is unregistered for all its hostnames.
 */
export function messagesFor(change: TableChange): RegistryMessages {
  const before = new Map(change.before.map((r) => [keyOf(r), r]));
  const out: RegistryMessages = { register: [], unregister: [] };
  for (const r of change.after) {
    const old = before.get(keyOf(r));
    before.delete(keyOf(r));
    if (!old || !sameRegistration(old, r)) out.register.push(registryMessage(r));
    const lost = old ? old.uris.filter((u) => !r.uris.includes(u)) : [];
    if (lost.length > 0) out.unregister.push(registryMessage(old!, lost));
  }
  for (const old of before.values()) out.unregister.push(registryMessage(old));
  return out;
}
