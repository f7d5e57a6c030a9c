// aedes-persistence-level ships no types; this is the part the embedded broker uses.
declare module 'aedes-persistence-level/asyncPersistence.js' {
  import type { ClassicLevel } from 'classic-level';
  // It implements the same persistence contract as the memory one, whose types are published.
  import type AsyncPersistence from 'aedes-persistence/types/asyncPersistence';
  /** The async Aedes persistence over a LevelDB instance. */
  const AsyncLevelPersistence: new (db: ClassicLevel) => AsyncPersistence;
  export = AsyncLevelPersistence;
}
