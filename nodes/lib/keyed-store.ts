import { rm } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';

/**
 * A store of small records by key, written in atomic batches: what a dedupe node's seen-set and an in
 * node's delivery counts keep on disk. Each keeps its own entry type and byte layout (its codec); the
 * contract tests of each run against both stores below.
 */

export interface KeyedRecord<Entry> {
  key: string;
  entry: Entry;
}

export interface KeyedStoreWrite<Entry> {
  /** Everything stored is deleted first (a dedupe node's msg.reset). */
  clear?: boolean;
  put: KeyedRecord<Entry>[];
  del: string[];
  /** Whether the write must reach the disk before it resolves (fsync). */
  sync: boolean;
}

export interface KeyedStore<Entry> {
  /** Opens the store and returns every record it holds, in no particular order. */
  open(): Promise<KeyedRecord<Entry>[]>;
  /** Applies the change; puts and deletes are atomic together. */
  write(change: KeyedStoreWrite<Entry>): Promise<void>;
  close(): Promise<void>;
  /** Closes and deletes everything the store holds. */
  destroy(): Promise<void>;
}

/** How an entry is laid out in bytes. */
export interface EntryCodec<Entry> {
  encode(entry: Entry): Buffer;
  decode(value: Buffer): Entry;
}

/** Records in LevelDB (classic-level, as the outbox): the key's UTF-8 bytes, and the entry as its codec writes it. */
export class LevelKeyedStore<Entry> implements KeyedStore<Entry> {
  private readonly db: ClassicLevel<string, Buffer>;

  constructor(
    private readonly directory: string,
    private readonly codec: EntryCodec<Entry>,
  ) {
    this.db = new ClassicLevel<string, Buffer>(directory, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  }

  async open(): Promise<KeyedRecord<Entry>[]> {
    await this.db.open();
    const records: KeyedRecord<Entry>[] = [];
    for await (const [key, value] of this.db.iterator())
      records.push({ key, entry: this.codec.decode(value) });
    return records;
  }

  async write(change: KeyedStoreWrite<Entry>): Promise<void> {
    if (change.clear) await this.db.clear();
    const batch = this.db.batch();
    for (const { key, entry } of change.put) batch.put(key, this.codec.encode(entry));
    for (const key of change.del) batch.del(key);
    await batch.write({ sync: change.sync });
  }

  async close(): Promise<void> {
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close();
  }

  async destroy(): Promise<void> {
    await this.close();
    await rm(this.directory, { recursive: true, force: true });
  }
}

/** Records in memory: for tests of the logic above a store, and the reference for the contracts. */
export class MemoryKeyedStore<Entry extends object> implements KeyedStore<Entry> {
  private readonly records = new Map<string, Entry>();

  get size(): number {
    return this.records.size;
  }

  async open(): Promise<KeyedRecord<Entry>[]> {
    return [...this.records].map(([key, entry]) => ({ key, entry: { ...entry } }));
  }

  async write(change: KeyedStoreWrite<Entry>): Promise<void> {
    if (change.clear) this.records.clear();
    for (const { key, entry } of change.put) this.records.set(key, { ...entry });
    for (const key of change.del) this.records.delete(key);
  }

  async close(): Promise<void> {}

  async destroy(): Promise<void> {
    this.records.clear();
  }
}
