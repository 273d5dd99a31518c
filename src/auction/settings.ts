import { durationSetting, intSetting } from "../settings/index.js";
import { leaderLockSettings } from "../nats/index.js";
import { cellTtlSettings } from "../store/index.js";

export const auctioneerOwnSettings = {
  auctionInterval: durationSetting({ flag: "auction-interval", env: "DIEGO_AUCTION_INTERVAL", default: "100ms", min: 1, help: "longest wait before a batch of pending tasks is auctioned" }),
  placementRetries: intSetting({ flag: "placement-retries", env: "DIEGO_PLACEMENT_RETRIES", default: 3, help: "auctions a task may fail to be placed in before it fails" }),
} as const;

/** Everything the auctioneer reads, its own settings and those it shares. */
export const auctioneerSettings = { ...auctioneerOwnSettings, ...leaderLockSettings, ...cellTtlSettings } as const;
