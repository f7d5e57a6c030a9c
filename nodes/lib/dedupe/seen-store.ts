/**
 * The storage contract of a persisted seen-set: keys with what is remembered of
 * them. Every implementation passes the same contract test
 * (test/support/seen-store-contract.ts).
 */
import type { SeenEntry } from './seen-cache.js';

export interface SeenRecord {
  key: string;
  entry: SeenEntry;
}

export interface SeenStoreWrite {
  /** Everything stored is deleted first (msg.reset). */
  clear: boolean;
  put: SeenRecord[];
  del: string[];
  /** Whether the write must reach the disk before it resolves (fsync). */
  sync: boolean;
}

export interface SeenStore {
  /** Opens the store and returns every record it holds, in no particular order. */
  open(): Promise<SeenRecord[]>;
  /** Applies the change; puts and deletes are atomic together. */
  write(change: SeenStoreWrite): Promise<void>;
  close(): Promise<void>;
  /** Closes and deletes everything the store holds. */
  destroy(): Promise<void>;
}
