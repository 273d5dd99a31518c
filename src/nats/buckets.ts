import { jetstreamManager } from "@nats-io/jetstream";
import { jetstream } from "@nats-io/jetstream";
import { Bucket, Kvm, type KV, type KvOptions } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { retryUntilDone } from "./retry.js";
import { ACTUAL_LRPS_BUCKET, CELLS_BUCKET, DESIRED_LRPS_BUCKET, DOMAINS_BUCKET, LOCKS_BUCKET, TASKS_BUCKET } from "./subjects.js";

export interface BucketOptions {
  /**
   * Replicas (copies on as many nodes of a NATS cluster). Given, an existing bucket with another
   * count is updated to it, or the start fails naming both counts; absent, a new bucket gets 1
   * and an existing one is left as it is.
   */
  replicas?: number;
  logger?: Logger;
}

/** An existing bucket has another replica count and JetStream refused to change it. */
export class BucketReplicasError extends Error {
  override readonly name = "BucketReplicasError";
  constructor(bucket: string, has: number, wanted: number, cause: unknown) {
    super(
      `bucket ${bucket} has ${has} replica(s), --replicas asks for ${wanted}, and JetStream refused the change: ` +
        `${cause instanceof Error ? cause.message : String(cause)} (change it with 'nats stream edit KV_${bucket} --replicas ${wanted}', or give --replicas ${has})`,
      { cause },
    );
  }
}

/** Opens (or creates) a bucket, retrying while JetStream is not ready yet (a start, an election). */
async function openBucket(nc: NatsConnection, name: string, config: Partial<KvOptions>, opts: BucketOptions): Promise<KV> {
  const kv = await retryUntilDone(() => new Kvm(jetstream(nc)).create(name, { history: 1, storage: "file", ...config, replicas: opts.replicas ?? 1 }), {
    what: `open bucket ${name}`,
    logger: opts.logger,
    maxDelayMs: 2_000,
  });
  if (opts.replicas !== undefined && kv instanceof Bucket) await ensureReplicas(nc, kv, opts.replicas, opts.logger);
  return kv;
}

async function ensureReplicas(nc: NatsConnection, kv: Bucket, wanted: number, logger?: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(kv.stream);
  const has = info.config.num_replicas || 1;
  if (has === wanted) return;
  try {
    await jsm.streams.update(kv.stream, { ...info.config, num_replicas: wanted });
    logger?.warn({ bucket: kv.bucket, from: has, to: wanted }, "bucket replica count changed");
  } catch (err) {
    throw new BucketReplicasError(kv.bucket, has, wanted, err);
  }
}

// File storage so the buckets survive a nats-server restart with their config.

/** The task bucket: one record per task, file storage, only the latest revision kept. */
export async function openTasksBucket(nc: NatsConnection, opts: BucketOptions = {}): Promise<KV> {
  return ensureDirectGets(nc, await openBucket(nc, TASKS_BUCKET, {}, opts));
}

/** The stores read with direct gets (src/store/kv-client.ts); a bucket made without them (by another client) is switched over rather than left to time out every read. */
async function ensureDirectGets(nc: NatsConnection, kv: KV): Promise<KV> {
  if (kv instanceof Bucket && !kv.direct) {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(kv.stream);
    await jsm.streams.update(kv.stream, { ...info.config, allow_direct: true });
    kv.direct = true;
  }
  return kv;
}

export interface LrpBuckets {
  desired: KV;
  actual: KV;
  domains: KV;
}

/** The LRP buckets: desired and actual LRPs, domain freshness (src/store/lrp-store.ts). */
export async function openLrpBuckets(nc: NatsConnection, opts: BucketOptions = {}): Promise<LrpBuckets> {
  const [desired, actual, domains] = await Promise.all(
    [DESIRED_LRPS_BUCKET, ACTUAL_LRPS_BUCKET, DOMAINS_BUCKET].map(async (name) => ensureDirectGets(nc, await openBucket(nc, name, {}, opts))),
  );
  return { desired: desired!, actual: actual!, domains: domains! };
}

/** Cell presences expire on their own when heartbeats stop. */
export async function openCellsBucket(nc: NatsConnection, ttlMs: number, opts: BucketOptions = {}): Promise<KV> {
  return openBucket(nc, CELLS_BUCKET, { ttl: ttlMs }, opts);
}

/** Leader locks expire when their holder stops refreshing them. */
export async function openLocksBucket(nc: NatsConnection, ttlMs: number, opts: BucketOptions = {}): Promise<KV> {
  return openBucket(nc, LOCKS_BUCKET, { ttl: ttlMs }, opts);
}
