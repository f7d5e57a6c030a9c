/**
 * The storage contract of the delivery counts: one record per key, either a
 * key being counted or a quarantined one, in a keyed store (lib/keyed-store.ts).
 * Every implementation passes the same contract test (test/support/delivery-store-contract.ts).
 */
import type { KeyedRecord, KeyedStore, KeyedStoreWrite } from '../keyed-store.js';

/** What is kept of one key. */
export interface DeliveryEntry {
  /** Deliveries handed to the flow and not completed (for a quarantined key: before it was quarantined). */
  attempts: number;
  /** Milliseconds since the epoch of the first counted delivery. */
  firstSeen: number;
  /** Of the latest delivery. */
  lastSeen: number;
  /** The error the flow last ended with, if it ended with one. */
  lastError?: string;
  /** Set once the key is quarantined: when. */
  quarantinedAt?: number;
}

export type DeliveryRecord = KeyedRecord<DeliveryEntry>;
export type DeliveryStoreWrite = KeyedStoreWrite<DeliveryEntry>;
export type DeliveryStore = KeyedStore<DeliveryEntry>;
