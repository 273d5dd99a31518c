export { startHeartbeat } from "./heartbeat.js";
export { currentPresence, type CellIdentity } from "./presence.js";
