/**
 * The storage contract of the delivery counts: one record per key, either a
 * key being counted or a quarantined one. Every implementation passes the same
 * contract test (test/support/delivery-store-contract.ts).
 */

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

export interface DeliveryRecord {
  key: string;
  entry: DeliveryEntry;
}

export interface DeliveryStoreWrite {
  put: DeliveryRecord[];
  del: string[];
  /** Whether the write must reach the disk before it resolves (fsync). */
  sync: boolean;
}

export interface DeliveryStore {
  /** Opens the store and returns every record it holds, in no particular order. */
  open(): Promise<DeliveryRecord[]>;
  /** Applies the change; puts and deletes are atomic together. */
  write(change: DeliveryStoreWrite): Promise<void>;
  close(): Promise<void>;
  /** Closes and deletes everything the store holds. */
  destroy(): Promise<void>;
}
