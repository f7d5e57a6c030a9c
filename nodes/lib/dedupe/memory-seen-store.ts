import type { SeenEntry } from './seen-cache.js';
import type { SeenRecord, SeenStore, SeenStoreWrite } from './seen-store.js';

/** A seen-set store in memory: for tests of the dedupe logic, and the reference for the contract. */
export class MemorySeenStore implements SeenStore {
  private readonly records = new Map<string, SeenEntry>();

  get size(): number {
    return this.records.size;
  }

  async open(): Promise<SeenRecord[]> {
    return [...this.records].map(([key, entry]) => ({ key, entry: { ...entry } }));
  }

  async write(change: SeenStoreWrite): Promise<void> {
    if (change.clear) this.records.clear();
    for (const { key, entry } of change.put) this.records.set(key, { ...entry });
    for (const key of change.del) this.records.delete(key);
  }

  async close(): Promise<void> {}

  async destroy(): Promise<void> {
    this.records.clear();
  }
}
