import type { QoS } from 'mqtt-packet';

/**
 * The storage contract of an outbox: an ordered map from sequence number to
 * record, plus a few counters kept consistent with it. Every implementation
 * passes the same contract test (test/support/outbox-store-contract.ts).
 */

/** What is stored for one message. */
export interface StoredRecord {
  /** Position in the outbox; records are sent in this order. */
  seq: number;
  /** Milliseconds since the epoch when the outbox accepted it. */
  queuedAt: number;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** MQTT 5 publish properties, JSON-safe (Buffers as base64 strings under `correlationData`). */
  properties?: Record<string, unknown>;
  /** The end-to-end message id, kept when receipts from the subscribers are awaited (`until: subscriber`). */
  messageId?: string;
  /** The Node-RED msg as JSON text, kept for delivery receipts (acknowledged mode). */
  msg?: string;
}

/** Counters the store keeps in the same atomic write as the records they describe. */
export interface OutboxMeta {
  /** Sequence number the next record gets. */
  nextSeq: number;
  count: number;
  /** Sum of the payload sizes. */
  bytes: number;
  /** Highest sequence number ever handed to the connection: records at or below it may have been sent. */
  sentHighWater: number;
}

export interface StoreWrite {
  put: StoredRecord[];
  del: number[];
  meta: OutboxMeta;
  /** Whether the write must reach the disk before it resolves (fsync). */
  sync: boolean;
}

export interface OpenedStore {
  meta: OutboxMeta;
  /** What storage recovery reported as dropped (a torn write after a power loss), for the log. */
  recoveryNotes: string[];
}

export interface OutboxStore {
  open(): Promise<OpenedStore>;
  /** Applies puts, deletes and the new meta atomically. */
  write(change: StoreWrite): Promise<void>;
  /** Up to `limit` records with seq > `afterSeq`, in order. */
  read(afterSeq: number, limit: number): Promise<StoredRecord[]>;
  close(): Promise<void>;
  /** Closes and deletes everything the store holds. */
  destroy(): Promise<void>;
}

export const EMPTY_META: OutboxMeta = { nextSeq: 1, count: 0, bytes: 0, sentHighWater: 0 };
