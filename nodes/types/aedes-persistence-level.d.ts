// aedes-persistence-level ships no types; this is the part the embedded broker uses.
declare module 'aedes-persistence-level/asyncPersistence.js' {
  import type { ClassicLevel } from 'classic-level';
  /** The async Aedes persistence over a LevelDB instance. */
  const AsyncLevelPersistence: new (db: ClassicLevel) => object;
  export = AsyncLevelPersistence;
}
