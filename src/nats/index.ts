export { startEmbeddedNats, NatsServerStartError, DataDirInUseError, type EmbeddedNats, type EmbeddedNatsOptions } from "./embedded-server.js";
export { connectNats, waitForNats, NatsUnreachableError, type NatsConnectOptions } from "./connect.js";
export { openTasksBucket, openCellsBucket, openLocksBucket, openLrpBuckets, BucketReplicasError, type BucketOptions, type LrpBuckets } from "./buckets.js";
export { retryUntilDone, isTransient, RetryTimeoutError, type RetryOptions } from "./retry.js";
export { onNatsStatus } from "./connection-status.js";
export { createLeaderLock, type LeaderLock, type LeaderLockOptions } from "./leader-lock.js";
export { subjects, subjectToken, TASKS_BUCKET, CELLS_BUCKET, LOCKS_BUCKET, ACTUAL_LRPS_BUCKET, DESIRED_LRPS_BUCKET, DOMAINS_BUCKET } from "./subjects.js";
export { natsConnectionSettings, replicaSettings, leaderLockSettings, embeddedNatsSettings } from "./settings.js";
export {
  NatsCredentialsError,
  NatsRefusedError,
  readNatsCredentials,
  redactNatsUrl,
  type NatsAuth,
  type NatsTlsFiles,
} from "./connect-options.js";
export { ensureLocalCredentials, type LocalCredentials } from "./local-credentials.js";
export { backoffMs } from "./retry.js";
