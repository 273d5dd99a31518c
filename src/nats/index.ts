export { startEmbeddedNats, NatsServerStartError, DataDirInUseError, type EmbeddedNats, type EmbeddedNatsOptions } from "./embedded-server.js";
export { connectNats, NatsUnreachableError, type NatsConnectOptions } from "./connect.js";
export { openTasksBucket, openCellsBucket, openLocksBucket } from "./buckets.js";
export { createLeaderLock, type LeaderLock, type LeaderLockOptions } from "./leader-lock.js";
export { subjects, subjectToken, TASKS_BUCKET, CELLS_BUCKET, LOCKS_BUCKET } from "./subjects.js";
