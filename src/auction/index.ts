export { startAuctioneer, type Auctioneer, type AuctioneerOptions, type AuctionStats } from "./auctioneer.js";
export { schedule, score, isCompatible, NO_COMPATIBLE_CELL, INSUFFICIENT_RESOURCES } from "./schedule.js";
export type { ScheduleResult } from "./schedule.js";
export type { CellBid, LrpPlacementRequest, PlacementRequest, Room } from "../model/index.js";
export { gatherBids, silentBids, bidFromPresence } from "./gather-bids.js";
export { auctioneerSettings, auctioneerOwnSettings } from "./settings.js";
export { placeLrp, commitLrp, resourceScore, acceptsRootfs, type LrpPlacement } from "./schedule-lrp.js";
