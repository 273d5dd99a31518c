import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Bucket, Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { CELLS_BUCKET, LOCKS_BUCKET, TASKS_BUCKET } from "./subjects.js";

export interface BucketOptions {
  /** Replicas for a NATS cluster; 1 on a single server. */
  replicas?: number;
}

/** The task bucket: one record per task, file storage, only the latest revision kept. */
export async function openTasksBucket(nc: NatsConnection, opts: BucketOptions = {}): Promise<KV> {
  const kv = await new Kvm(jetstream(nc)).create(TASKS_BUCKET, {
    history: 1,
    storage: "file",
    replicas: opts.replicas ?? 1,
  });
  // The task store reads with direct gets (src/store/kv-client.ts); a bucket made without
  // them (by another client) is switched over rather than left to time out every read.
  if (kv instanceof Bucket && !kv.direct) {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(kv.stream);
    await jsm.streams.update(kv.stream, { ...info.config, allow_direct: true });
    kv.direct = true;
  }
  return kv;
}

// File storage so the buckets survive a nats-server restart with their config.
/** Cell presences expire on their own when heartbeats stop. */
export async function openCellsBucket(nc: NatsConnection, ttlMs: number, opts: BucketOptions = {}): Promise<KV> {
  return new Kvm(jetstream(nc)).create(CELLS_BUCKET, {
    history: 1,
    storage: "file",
    ttl: ttlMs,
    replicas: opts.replicas ?? 1,
  });
}

/** Leader locks expire when their holder stops refreshing them. */
export async function openLocksBucket(nc: NatsConnection, ttlMs: number, opts: BucketOptions = {}): Promise<KV> {
  return new Kvm(jetstream(nc)).create(LOCKS_BUCKET, {
    history: 1,
    storage: "file",
    ttl: ttlMs,
    replicas: opts.replicas ?? 1,
  });
}
