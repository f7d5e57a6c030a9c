import { rm } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import type { DeliveryEntry, DeliveryRecord, DeliveryStore, DeliveryStoreWrite } from './delivery-store.js';

/**
 * Delivery counts in LevelDB (classic-level, as the outbox and the seen-set).
 * One record per key: the key's UTF-8 bytes, and a value of a flags byte, the
 * attempts (uint32), first and last delivery and quarantine time (ms, as
 * doubles), then the last error's UTF-8 bytes when there is one.
 */
export class LevelDeliveryStore implements DeliveryStore {
  private readonly db: ClassicLevel<string, Buffer>;

  constructor(private readonly directory: string) {
    this.db = new ClassicLevel<string, Buffer>(directory, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  }

  async open(): Promise<DeliveryRecord[]> {
    await this.db.open();
    const records: DeliveryRecord[] = [];
    for await (const [key, value] of this.db.iterator()) records.push({ key, entry: decodeEntry(value) });
    return records;
  }

  async write(change: DeliveryStoreWrite): Promise<void> {
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

const QUARANTINED = 0b01;
const HAS_ERROR = 0b10;
const HEADER_BYTES = 29;

function encodeEntry(entry: DeliveryEntry): Buffer {
  const error = entry.lastError === undefined ? undefined : Buffer.from(entry.lastError, 'utf8');
  const value = Buffer.alloc(HEADER_BYTES + (error?.length ?? 0));
  value.writeUInt8((entry.quarantinedAt === undefined ? 0 : QUARANTINED) | (error ? HAS_ERROR : 0), 0);
  value.writeUInt32BE(Math.min(entry.attempts, 0xffffffff), 1);
  value.writeDoubleBE(entry.firstSeen, 5);
  value.writeDoubleBE(entry.lastSeen, 13);
  value.writeDoubleBE(entry.quarantinedAt ?? 0, 21);
  error?.copy(value, HEADER_BYTES);
  return value;
}

function decodeEntry(value: Buffer): DeliveryEntry {
  const flags = value.readUInt8(0);
  const entry: DeliveryEntry = {
    attempts: value.readUInt32BE(1),
    firstSeen: value.readDoubleBE(5),
    lastSeen: value.readDoubleBE(13),
  };
  if (flags & HAS_ERROR) entry.lastError = value.toString('utf8', HEADER_BYTES);
  if (flags & QUARANTINED) entry.quarantinedAt = value.readDoubleBE(21);
  return entry;
}
