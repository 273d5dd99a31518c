export { createResourceLedger, type ResourceLedger } from "./resource-ledger.js";
