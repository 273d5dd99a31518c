import type { ConnectRouter } from "@connectrpc/connect";
import { file_diego_v1_lrp } from "../gen/diego/v1/lrp_pb.js";
import { file_diego_v1_service } from "../gen/diego/v1/service_pb.js";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import { createProbeHandler, registerHealthService, type Readiness } from "./health.js";
import type { OperationsRoutes } from "./http-server.js";
import { registerReflection } from "./reflection.js";

// What operators point at the receptor: HTTP probes (and metrics, when given), gRPC health and
// server reflection, all on the API's own address.

const API_SERVICES = ["diego.v1.TaskService", "diego.v1.CellService", "diego.v1.LRPService"] as const;
const HEALTH_SERVICE = "grpc.health.v1.Health";

export function createOperationsRoutes(readiness: Readiness, extraHttp?: OperationsRoutes["http"]): OperationsRoutes {
  const probes = createProbeHandler(readiness);
  return {
    http: (req, res) => probes(req, res) || (extraHttp?.(req, res) ?? false),
    routes(router: ConnectRouter) {
      registerHealthService(router, readiness, API_SERVICES);
      registerReflection(router, [file_diego_v1_service, file_diego_v1_lrp, file_grpc_health_v1_health], [...API_SERVICES, HEALTH_SERVICE]);
    },
  };
}
