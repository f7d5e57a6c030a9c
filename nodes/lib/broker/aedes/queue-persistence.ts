/**
 * The persistence the embedded broker hands Aedes: the store (memory, LevelDB or Redis) wrapped in
 * the offline queue bound (on one broker, or across the brokers sharing one Redis) and in the
 * note of queued messages sent again (DUP).
 */
import { randomUUID } from 'node:crypto';
import type { ClassicLevel } from 'classic-level';
// The async persistence Aedes requires since 1.0 (the package's main export is the callback one).
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js';
import { boundOfflineQueues } from './offline-queue-bound.js';
import type { RedisBackend } from './redis-backend.js';
import { ClusterState } from './cluster-state.js';
import { boundClusterQueues, ClusterSessions } from './cluster-sessions.js';
import { MemoryPersistence, noteQueueResends, retainedDollarRule } from './persistence-patches.js';
import type { AedesPersistence, DeliveredPacket } from './types.js';
import type { QuotaDisconnect } from './quota-disconnect.js';

export interface QueuePersistenceOptions {
  /** Where the broker keeps its state: Redis, a LevelDB, or (neither) memory. */
  redis?: RedisBackend;
  db?: ClassicLevel;
  brokerId: string;
  /** The most messages kept for one client while it is away; 0 keeps them all. */
  maxOfflineMessages: number;
  /** Whether a client is connected to this broker. */
  isConnected(clientId: string): boolean;
  onDrop(clientId: string, packet: DeliveredPacket): void;
  /** The DISCONNECT 0x97 of a connected client over the bound that acknowledges nothing, once Aedes runs. */
  quota(): QuotaDisconnect | undefined;
  onError(error: Error): void;
}

export interface QueuePersistence {
  persistence: AedesPersistence;
  /** With Redis: the cluster's view of clients and session expiry, to attach to Aedes once it runs. */
  clusterSessions: ClusterSessions | undefined;
}

export async function queuePersistence(options: QueuePersistenceOptions): Promise<QueuePersistence> {
  const { redis, db, maxOfflineMessages, onDrop } = options;
  const store = redis?.persistence ?? (db ? new AsyncLevelPersistence(db) : new MemoryPersistence());
  let bounded = boundOfflineQueues(store, {
    // In a cluster a broker knows only its own clients: the cluster's bound, below, does the trimming.
    maxMessages: redis ? 0 : maxOfflineMessages,
    isConnected: options.isConnected,
    onDrop,
    onOverWhileConnected: (clientId, maxMessages) => options.quota()?.overBound(clientId, maxMessages),
  });
  let clusterSessions: ClusterSessions | undefined;
  const cluster = redis ? new ClusterState(redis.storageConnection, options.brokerId) : undefined;
  if (cluster) {
    await cluster.start(() => clusterSessions?.announceClients());
    bounded = boundClusterQueues(bounded, cluster, { maxMessages: maxOfflineMessages, onDrop });
  }
  const persistence = retainedDollarRule(noteQueueResends(bounded));
  if (cluster) {
    clusterSessions = new ClusterSessions(cluster, persistence, options.onError);
    clusterSessions.watchQuotas(options.quota, maxOfflineMessages);
  }
  return { persistence, clusterSessions };
}

/**
 * A broker id that sorts by start time. aedes-persistence-level orders each
 * outgoing queue by broker id, then by a counter that restarts at every start:
 * with Aedes' random id, messages queued before a restart could come after
 * those queued since, and the oldest dropped would be a random one.
 */
export function startOrderedBrokerId(): string {
  return `${Date.now().toString(36).padStart(10, '0')}-${randomUUID()}`;
}
