import type { DeliveryEntry, DeliveryRecord, DeliveryStore, DeliveryStoreWrite } from './delivery-store.js';

/** Delivery counts kept in memory: for tests of the counting rules, and the reference for the contract. */
export class MemoryDeliveryStore implements DeliveryStore {
  private readonly records = new Map<string, DeliveryEntry>();

  get size(): number {
    return this.records.size;
  }

  async open(): Promise<DeliveryRecord[]> {
    return [...this.records].map(([key, entry]) => ({ key, entry: { ...entry } }));
  }

  async write(change: DeliveryStoreWrite): Promise<void> {
    for (const { key, entry } of change.put) this.records.set(key, { ...entry });
    for (const key of change.del) this.records.delete(key);
  }

  async close(): Promise<void> {}

  async destroy(): Promise<void> {
    this.records.clear();
  }
}
