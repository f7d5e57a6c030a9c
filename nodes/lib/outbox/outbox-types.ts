/** The outbox's types: what it hands out and tells, and the batch of changes it writes next. */
import type { PendingCommit } from '../pending-commit.js';
import type { StoredRecord } from './store.js';

/** A message as the out node hands it to the outbox. */
export type NewRecord = Omit<StoredRecord, 'seq' | 'queuedAt'>;

/** A record handed to the sender, with its live message when this process appended it. */
export interface Delivery<LiveMessage = unknown> {
  record: StoredRecord;
  live: LiveMessage | undefined;
  /** 1 for the first send; more after a reconnect or a restart. */
  attempt: number;
  /** Whether an earlier attempt may have reached the broker (the MQTT DUP flag). */
  possiblySent: boolean;
}

export interface OutboxEvents<LiveMessage> {
  /** A record was evicted by the dropOldest policy (`overflow`), or purged by an admin (`purged`). */
  dropped: [record: StoredRecord, live: LiveMessage | undefined, reason: DropReason];
  /** Records became ready to send. */
  ready: [];
}

/** Why a message left the outbox undelivered. */
export type DropReason = 'overflow' | 'purged';

/** Changes waiting for the next write, and the promise every change in it was given. */
export interface PendingWrite {
  /** By seq, in seq order. A record acknowledged before its write leaves the map: it is never written. */
  put: Map<number, StoredRecord>;
  del: number[];
  written: PendingCommit | undefined;
}

export const noPendingWrite = (): PendingWrite => ({ put: new Map(), del: [], written: undefined });
