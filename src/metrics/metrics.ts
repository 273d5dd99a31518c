import client from "prom-client";

// Every metric of every diego process, on prom-client's process-wide registry: `diego up` runs
// all components in one process, so its receptor's /metrics shows them all. docs/metrics.md
// lists each one.

export const registry = client.register;

let defaultsOn = false;
/** Node's process metrics (CPU, memory, event loop lag, handles); once per process. */
export function collectProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  client.collectDefaultMetrics({ register: registry });
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const START_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const apiRequests = new client.Counter({
  name: "diego_api_requests_total",
  help: "API requests answered, by route, method, HTTP status code and (gRPC over HTTP/2) grpc-status",
  labelNames: ["route", "method", "code", "grpc_code"] as const,
});

export const apiRequestSeconds = new client.Histogram({
  name: "diego_api_request_duration_seconds",
  help: "API request latency from arrival to the end of the reply, by route and method",
  labelNames: ["route", "method"] as const,
  buckets: LATENCY_BUCKETS,
});

export const auctionBatchSize = new client.Histogram({
  name: "diego_auction_batch_size",
  help: "tasks in one auction",
  buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
});

export const auctionSeconds = new client.Histogram({
  name: "diego_auction_duration_seconds",
  help: "placement latency: one auction from its start to the work sent to cells",
  buckets: LATENCY_BUCKETS,
});

export const auctionTasks = new client.Counter({
  name: "diego_auction_tasks_total",
  help: "tasks auctioned, by result (placed, failed, waiting for room)",
  labelNames: ["result"] as const,
});

export const containerCreateSeconds = new client.Histogram({
  name: "diego_container_create_duration_seconds",
  help: "time for the OCI runtime to create a task's container",
  buckets: START_BUCKETS,
});

export const taskStartSeconds = new client.Histogram({
  name: "diego_task_start_duration_seconds",
  help: "time from a task's RUNNING to its first action starting (root filesystem resolved, container created)",
  buckets: START_BUCKETS,
});

export const callbackAttempts = new client.Counter({
  name: "diego_callback_attempts_total",
  help: "completion callback POSTs, by outcome: the HTTP status class (2xx ... 5xx, 503, 504), timeout, error or aborted",
  labelNames: ["outcome"] as const,
});

export const natsReconnects = new client.Counter({
  name: "diego_nats_reconnects_total",
  help: "times a NATS connection of this process was lost and then reconnected, by connection name",
  labelNames: ["connection"] as const,
});

export const lrpDesiredInstances = new client.Gauge({
  name: "diego_lrp_desired_instances",
  help: "LRP instances desired (the sum of every DesiredLRP's instances), as of the converger's last pass",
});

export const lrpActualInstances = new client.Gauge({
  name: "diego_lrp_actual_instances",
  help: "LRP instance records by state (UNCLAIMED, CLAIMED, RUNNING, CRASHED, EVACUATING), as of the converger's last pass",
  labelNames: ["state"] as const,
});

export const lrpConvergenceActions = new client.Counter({
  name: "diego_lrp_convergence_actions_total",
  help: "what LRP convergence did, by action (create, replace, retire, restart, auction, remove-evacuating)",
  labelNames: ["action"] as const,
});
