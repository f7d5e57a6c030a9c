import {
  EMPTY_META,
  type OpenedStore,
  type OutboxMeta,
  type OutboxStore,
  type StoreWrite,
  type StoredRecord,
} from './store.js';

/** An outbox store in memory: for tests of the outbox logic, and the reference for the contract. */
export class MemoryOutboxStore implements OutboxStore {
  private readonly records = new Map<number, StoredRecord>();
  private meta: OutboxMeta = { ...EMPTY_META };

  async open(): Promise<OpenedStore> {
    return { meta: { ...this.meta }, recoveryNotes: [] };
  }

  async write(change: StoreWrite): Promise<void> {
    for (const record of change.put) this.records.set(record.seq, record);
    for (const seq of change.del) this.records.delete(seq);
    this.meta = { ...change.meta };
  }

  async read(afterSeq: number, limit: number): Promise<StoredRecord[]> {
    return [...this.records.values()]
      .filter((record) => record.seq > afterSeq)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, limit);
  }

  async close(): Promise<void> {}

  async destroy(): Promise<void> {
    this.records.clear();
    this.meta = { ...EMPTY_META };
  }
}
