import { rm } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import type { SeenEntry } from './seen-cache.js';
import type { SeenRecord, SeenStore, SeenStoreWrite } from './seen-store.js';

/**
 * A seen-set in LevelDB (classic-level, as the outbox). One record per key: the
 * key's UTF-8 bytes, and 20 bytes of value: first and last sighting (ms, as
 * doubles) and the count.
 */
export class LevelSeenStore implements SeenStore {
  private readonly db: ClassicLevel<string, Buffer>;

  constructor(private readonly directory: string) {
    this.db = new ClassicLevel<string, Buffer>(directory, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  }

  async open(): Promise<SeenRecord[]> {
    await this.db.open();
    const records: SeenRecord[] = [];
    for await (const [key, value] of this.db.iterator()) records.push({ key, entry: decodeEntry(value) });
    return records;
  }

  async write(change: SeenStoreWrite): Promise<void> {
    if (change.clear) await this.db.clear();
    const batch = this.db.batch();
    for (const { key, entry } of change.put) batch.put(key, encodeEntry(entry));
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

const ENTRY_BYTES = 20;

function encodeEntry(entry: SeenEntry): Buffer {
  const value = Buffer.allocUnsafe(ENTRY_BYTES);
  value.writeDoubleBE(entry.firstSeenAt, 0);
  value.writeDoubleBE(entry.lastSeenAt, 8);
  value.writeUInt32BE(Math.min(entry.count, 0xffffffff), 16);
  return value;
}

function decodeEntry(value: Buffer): SeenEntry {
  return {
    firstSeenAt: value.readDoubleBE(0),
    lastSeenAt: value.readDoubleBE(8),
    count: value.readUInt32BE(16),
  };
}
