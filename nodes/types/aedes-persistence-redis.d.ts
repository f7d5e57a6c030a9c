// aedes-persistence-redis ships no types; this is the part the embedded broker uses.
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  import type { Redis } from 'ioredis';
  // It implements the same persistence contract as the memory one, whose types are published.
  import type AsyncPersistence from 'aedes-persistence/types/asyncPersistence';
  interface RedisPersistenceOptions {
    /** The connection to use (otherwise it opens its own from ioredis options). */
    conn: Redis;
    /** The most queued messages sent to a client when its session resumes; -1 sends them all. */
    maxSessionDelivery?: number;
  }
  /** The async Aedes persistence over Redis. */
  const AsyncRedisPersistence: new (options: RedisPersistenceOptions) => AsyncPersistence;
  export = AsyncRedisPersistence;
}
