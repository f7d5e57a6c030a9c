import { LevelKeyedStore } from '../keyed-store.js';
import type { SeenEntry } from './seen-cache.js';

/**
 * A seen-set in LevelDB. One record per key: the key's UTF-8 bytes, and 20 bytes
 * of value: first and last sighting (ms, as doubles) and the count.
 */
export class LevelSeenStore extends LevelKeyedStore<SeenEntry> {
  constructor(directory: string) {
    super(directory, { encode: encodeEntry, decode: decodeEntry });
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
