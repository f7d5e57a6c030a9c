// The memory persistence's async class, which Aedes 1.x needs, has its types beside the package's main ones.
declare module 'aedes-persistence/asyncPersistence.js' {
  import type MemoryPersistence from 'aedes-persistence/types/asyncPersistence';
  const AsyncMemoryPersistence: typeof MemoryPersistence;
  export = AsyncMemoryPersistence;
}
