import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { CELLS_BUCKET, LOCKS_BUCKET, TASKS_BUCKET } from "./subjects.js";

export interface BucketOptions {
  /** Replicas for a NATS cluster; 1 on a single server. */
  replicas?: number;
}

/** The task bucket: one record per task, file storage, only the latest revision kept. */
export async function openTasksBucket(nc: NatsConnection, opts: BucketOptions = {}): Promise<KV> {
  return new Kvm(jetstream(nc)).create(TASKS_BUCKET, {
    history: 1,
    storage: "file",
    replicas: opts.replicas ?? 1,
  });
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
