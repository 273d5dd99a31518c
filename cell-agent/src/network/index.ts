export { startCellNetwork, cellNames, allowsIcmp, type CellNetwork, type CellNetworkOptions, type ContainerNetwork, type ContainerNetworkSpec } from "./cell-network.js";
export { NetworkConfigError, NetworkExhaustedError } from "./errors.js";
export { logPrefix } from "./firewall.js";
export { watchKernelLog } from "./kernel-log.js";
export { defaultRouteAddress, hostDnsServers } from "./host-info.js";
