import { LevelKeyedStore } from '../keyed-store.js';
import type { DeliveryEntry } from './delivery-store.js';

/**
 * Delivery counts in LevelDB. One record per key: the key's UTF-8 bytes, and a
 * value of a flags byte, the attempts (uint32), first and last delivery and
 * quarantine time (ms, as doubles), then the last error's UTF-8 bytes when there is one.
 */
export class LevelDeliveryStore extends LevelKeyedStore<DeliveryEntry> {
  constructor(directory: string) {
    super(directory, { encode: encodeEntry, decode: decodeEntry });
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
