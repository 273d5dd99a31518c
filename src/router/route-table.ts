import { ActualLrpState, type ActualLRP, type DesiredLRPResponse } from "../gen/diego/v1/lrp_pb.js";
import { cfRoutesOf, normalizeHost, type CfRoute } from "./cf-routes.js";

// The route table: hostname -> the endpoints (address:host_port) of the RUNNING instances of
// every DesiredLRP that routes that hostname to one of its container ports (reference 9.1).
// Pure: it is fed DesiredLRP and ActualLRP records and answers lookups; the watch and the
// proxy are elsewhere. Each change recomputes only the one process guid it touches, and returns
// that guid's registrations before and after, which the NATS registrar turns into messages.

export interface Endpoint {
  /** address:port, the balancer's key for an endpoint. */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly processGuid: string;
  readonly index: number;
  readonly instanceGuid: string;
  readonly evacuating: boolean;
  /** The DesiredLRP's log_guid: gorouter's `app`. */
  readonly app: string;
}

/** A hostname's instances. Empty: the host is known but nothing runs (503). */
export interface Pool {
  readonly hostname: string;
  readonly endpoints: readonly Endpoint[];
}

/** One endpoint of one routing key (process guid, container port): a router.register message. */
export interface Registration {
  processGuid: string;
  containerPort: number;
  host: string;
  port: number;
  uris: string[];
  app: string;
  privateInstanceId: string;
  routeServiceUrl: string;
}

export interface TableChange {
  before: Registration[];
  after: Registration[];
}

interface Running {
  host: string;
  ports: Map<number, number>;
  index: number;
  instanceGuid: string;
  evacuating: boolean;
}

interface Process {
  routes: CfRoute[];
  app: string;
  /** Keyed like the actuals bucket: `<index>` or `<index>.evacuating`. */
  running: Map<string, Running>;
  hasDesired: boolean;
}

const runningKey = (a: ActualLRP): string => (a.evacuating ? `${a.index}.evacuating` : `${a.index}`);

export class RouteTable {
  private readonly processes = new Map<string, Process>();
  /** hostname -> process guid -> its endpoints for that hostname. */
  private readonly byHost = new Map<string, Map<string, Endpoint[]>>();
  private readonly pools = new Map<string, Pool>();

  lookup(hostname: string): Pool | undefined {
    return this.pools.get(normalizeHost(hostname));
  }

  hostnames(): string[] {
    return [...this.pools.keys()];
  }

  setDesired(d: DesiredLRPResponse): TableChange {
    return this.change(d.processGuid, (p) => {
      p.routes = cfRoutesOf(d);
      p.app = d.logGuid;
      p.hasDesired = true;
    });
  }

  removeDesired(processGuid: string): TableChange {
    return this.change(processGuid, (p) => {
      p.routes = [];
      p.hasDesired = false;
    });
  }

  /** Any state: a RUNNING record is routed, anything else is taken out. */
  setActual(a: ActualLRP): TableChange {
    return this.change(a.processGuid, (p) => {
      if (a.state !== ActualLrpState.RUNNING || a.address === "") {
        p.running.delete(runningKey(a));
        return;
      }
      p.running.set(runningKey(a), {
        host: a.address,
        ports: new Map(a.ports.map((m) => [m.containerPort, m.hostPort])),
        index: a.index,
        instanceGuid: a.instanceGuid,
        evacuating: a.evacuating,
      });
    });
  }

  removeActual(a: ActualLRP): TableChange {
    return this.change(a.processGuid, (p) => void p.running.delete(runningKey(a)));
  }

  /** Every registration in the table (the periodic re-registration). */
  registrations(): Registration[] {
    return [...this.processes.entries()].flatMap(([guid, p]) => registrationsOf(guid, p));
  }

  private change(processGuid: string, mutate: (p: Process) => void): TableChange {
    const p = this.processes.get(processGuid) ?? { routes: [], app: "", running: new Map(), hasDesired: false };
    const before = registrationsOf(processGuid, p);
    const oldHosts = new Set(p.routes.flatMap((r) => r.hostnames));
    mutate(p);
    if (!p.hasDesired && p.running.size === 0) this.processes.delete(processGuid);
    else this.processes.set(processGuid, p);
    const endpoints = endpointsByHost(processGuid, p);
    for (const h of oldHosts) if (!endpoints.has(h)) this.setHost(h, processGuid, undefined);
    for (const [h, eps] of endpoints) this.setHost(h, processGuid, eps);
    return { before, after: registrationsOf(processGuid, p) };
  }

  private setHost(hostname: string, processGuid: string, eps: Endpoint[] | undefined): void {
    const byGuid = this.byHost.get(hostname) ?? new Map<string, Endpoint[]>();
    if (eps) byGuid.set(processGuid, eps);
    else byGuid.delete(processGuid);
    if (byGuid.size === 0) {
      this.byHost.delete(hostname);
      this.pools.delete(hostname);
      return;
    }
    this.byHost.set(hostname, byGuid);
    this.pools.set(hostname, { hostname, endpoints: [...byGuid.values()].flat() });
  }
}

function endpointsByHost(processGuid: string, p: Process): Map<string, Endpoint[]> {
  const out = new Map<string, Endpoint[]>();
  for (const route of p.routes) {
    const eps: Endpoint[] = [];
    for (const r of p.running.values()) {
      const port = r.ports.get(route.containerPort);
      if (port === undefined || port === 0) continue;
      eps.push({ id: `${r.host}:${port}`, host: r.host, port, processGuid, index: r.index, instanceGuid: r.instanceGuid, evacuating: r.evacuating, app: p.app });
    }
    for (const h of route.hostnames) out.set(h, [...(out.get(h) ?? []), ...eps]);
  }
  return out;
}

function registrationsOf(processGuid: string, p: Process): Registration[] {
  const out: Registration[] = [];
  for (const route of p.routes) {
    if (route.hostnames.length === 0) continue;
    for (const r of p.running.values()) {
      const port = r.ports.get(route.containerPort);
      if (port === undefined || port === 0) continue;
      out.push({
        processGuid,
        containerPort: route.containerPort,
        host: r.host,
        port,
        uris: route.hostnames,
        app: p.app,
        privateInstanceId: r.instanceGuid,
        routeServiceUrl: route.routeServiceUrl,
      });
    }
  }
  return out;
}
