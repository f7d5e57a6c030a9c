// The Aedes persistences this folder loads, as far as it uses them: the level and redis ones ship no
// types, and the memory one's async class has its types beside the package's main ones.

declare module 'aedes-persistence/asyncPersistence.js' {
  import type MemoryPersistence from 'aedes-persistence/types/asyncPersistence';
  const AsyncMemoryPersistence: typeof MemoryPersistence;
  export = AsyncMemoryPersistence;
}

declare module 'aedes-persistence-level/asyncPersistence.js' {
  import type { ClassicLevel } from 'classic-level';
  // It implements the same persistence contract as the memory one, whose types are published.
  import type AsyncPersistence from 'aedes-persistence/types/asyncPersistence';
  /** The async Aedes persistence over a LevelDB instance. */
  const AsyncLevelPersistence: new (db: ClassicLevel) => AsyncPersistence;
  export = AsyncLevelPersistence;
}

// aedes-persistence-redis under another name: Aedes names version 11 as an optional peer, and a
// dependency on 12 under its own name made npm install 11 beside it wherever this package is not the
// root project (a palette install). Under this name Aedes' optional peer is absent, and not installed.
declare module 'aedes-persistence-redis-v12/asyncPersistence.js' {
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

// The encoding aedes-persistence-redis stores packets in, read back by the cluster's queue bound.
declare module 'msgpack-lite' {
  export function decode(stored: Buffer): unknown;
}
