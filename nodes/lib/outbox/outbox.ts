import { EventEmitter } from 'node:events';
import type { OutboxMeta, OutboxStore, StoredRecord } from './store.js';
import { pendingCommit, type PendingCommit } from '../pending-commit.js';

export type OverflowPolicy = 'dropOldest' | 'rejectNew';

export interface OutboxLimits {
  maxMessages: number;
  /** Bound on the sum of payload sizes. */
  maxBytes: number;
  overflow: OverflowPolicy;
}

/** A message as the out node hands it to the outbox. */
export type NewRecord = Omit<StoredRecord, 'seq' | 'queuedAt'>;

/** A record handed to the sender, with the tag its append was given in this process. */
export interface Delivery<Tag = unknown> {
  record: StoredRecord;
  tag: Tag | undefined;
  /** 1 for the first send; more after a reconnect or a restart. */
  attempt: number;
  /** Whether an earlier attempt may have reached the broker (the MQTT DUP flag). */
  possiblySent: boolean;
}

export class OutboxFullError extends Error {
  readonly code = 'outbox-full';
  constructor(readonly limits: OutboxLimits) {
    super('the outbox is full');
    this.name = 'OutboxFullError';
  }
}

export interface OutboxEvents<Tag> {
  /** A record was evicted by the dropOldest policy. */
  dropped: [record: StoredRecord, tag: Tag | undefined];
  /** Records became ready to send. */
  ready: [];
}

/** How many records are read ahead from the store into memory: memory stays bounded whatever the backlog. */
const READ_AHEAD = 500;

/** Changes waiting for the next write, and the promise every change in it was given. */
interface PendingWrite {
  put: StoredRecord[];
  del: number[];
  sync: boolean;
  written: PendingCommit | undefined;
}

/**
 * A durable, ordered, bounded queue of messages to publish. Appends are group
 * committed: everything appended while one write is on its way to the disk goes
 * in the next write, so durability costs one fsync per batch, not per message.
 * Only a window of records is held in memory; the rest stays in the store.
 */
export class Outbox<Tag = unknown> extends EventEmitter<OutboxEvents<Tag>> {
  private meta: OutboxMeta;
  /** Committed, not in flight, seq ≤ readCursor, in seq order. */
  private readonly ready: StoredRecord[] = [];
  /** Highest seq loaded into memory; committed records above it are only in the store. */
  private readCursor: number;
  /** Highest committed seq. */
  private committedSeq: number;
  private readonly inFlight = new Map<number, StoredRecord>();
  /** Attempts made by this process, by seq. */
  private readonly attempts = new Map<number, number>();
  /**
   * What the caller attached to each record it appended in this process (Node-RED's
   * done and msg), from the moment a seq is reserved, so no event can miss it.
   */
  private readonly tags = new Map<number, Tag>();
  private readonly sentBeforeOpen: number;
  private pending: PendingWrite = { put: [], del: [], sync: false, written: undefined };
  private writing: Promise<void> | undefined;
  private loading: Promise<void> | undefined;
  /** Serialises appends, so evictions happen in order. */
  private appendChain: Promise<unknown> = Promise.resolve();
  /** Appends waiting in appendChain: while there are some, a new one waits behind them. */
  private chainedAppends = 0;
  private closed = false;

  private constructor(
    private readonly store: OutboxStore,
    private readonly limits: OutboxLimits,
    meta: OutboxMeta,
    readonly recoveryNotes: string[],
  ) {
    super();
    this.meta = meta;
    this.readCursor = 0;
    this.committedSeq = meta.nextSeq - 1;
    this.sentBeforeOpen = meta.sentHighWater;
  }

  static async open<Tag = unknown>(store: OutboxStore, limits: OutboxLimits): Promise<Outbox<Tag>> {
    const { meta, recoveryNotes } = await store.open();
    return new Outbox<Tag>(store, limits, meta, recoveryNotes);
  }

  /** Messages held: waiting and in flight. */
  get count(): number {
    return this.meta.count;
  }

  get bytes(): number {
    return this.meta.bytes;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Resolves once the record is on disk; rejects with OutboxFullError under `rejectNew` when full. */
  append(input: NewRecord, tag?: Tag): Promise<StoredRecord> {
    // Only the room check and the enqueueing are serialised; the disk writes of many appends share one batch.
    if (this.chainedAppends === 0 && !this.closed && this.hasRoomFor(input.payload.length)) {
      // Nothing ahead of it and nothing to evict: it is enqueued now, without a turn through the chain.
      const { record, committed } = this.enqueueRecord(input, tag);
      return committed.then(() => record);
    }
    this.chainedAppends++;
    const reserved = this.appendChain.then(() => this.reserve(input, tag));
    this.appendChain = reserved.catch(() => undefined).then(() => this.chainedAppends--);
    return reserved.then(({ record, committed }) => committed.then(() => record));
  }

  private hasRoomFor(size: number): boolean {
    return this.meta.count + 1 <= this.limits.maxMessages && this.meta.bytes + size <= this.limits.maxBytes;
  }

  /** Up to `max` records to send, oldest first; they are in flight until acknowledged or released. */
  async take(max: number): Promise<Delivery<Tag>[]> {
    if (this.ready.length < max && this.readCursor < this.committedSeq) await this.load();
    const deliveries: Delivery<Tag>[] = [];
    while (deliveries.length < max && this.ready.length > 0) {
      const record = this.ready.shift() as StoredRecord;
      this.inFlight.set(record.seq, record);
      const earlier = this.attempts.get(record.seq) ?? 0;
      this.attempts.set(record.seq, earlier + 1);
      deliveries.push({
        record,
        tag: this.tags.get(record.seq),
        attempt: earlier + 1 + (record.seq <= this.sentBeforeOpen ? 1 : 0),
        possiblySent: earlier > 0 || record.seq <= this.sentBeforeOpen,
      });
      if (record.seq > this.meta.sentHighWater) this.meta.sentHighWater = record.seq;
    }
    return deliveries;
  }

  /** The broker has it (or it was written, at QoS 0): forget it. */
  acknowledge(seq: number): Promise<void> {
    const record = this.inFlight.get(seq);
    if (!record || this.closed) return Promise.resolve();
    this.inFlight.delete(seq);
    this.attempts.delete(seq);
    this.tags.delete(seq);
    // A failed delete is retried with the next write; at worst the message is sent again after a restart.
    return this.remove(record, false).catch(() => undefined);
  }

  /** Sending failed: the record goes back to the queue, ahead of newer ones. */
  release(seq: number): void {
    const record = this.inFlight.get(seq);
    if (!record) return;
    this.inFlight.delete(seq);
    let index = this.ready.length;
    while (index > 0 && this.ready[index - 1].seq > seq) index--;
    this.ready.splice(index, 0, record);
    this.emit('ready');
  }

  /** Writes what is pending, then closes the store; in-flight records stay stored and are sent after reopening. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.appendChain;
    await this.flush();
    this.closed = true;
    this.tags.clear();
    await this.store.close();
  }

  /** Deletes every stored record (the node was deleted). */
  async destroy(): Promise<void> {
    this.closed = true;
    await this.writing;
    await this.store.destroy();
  }

  private async reserve(
    input: NewRecord,
    tag: Tag | undefined,
  ): Promise<{ record: StoredRecord; committed: Promise<void> }> {
    if (this.closed) throw new Error('the outbox is closed');
    while (!this.hasRoomFor(input.payload.length)) {
      if (this.limits.overflow === 'rejectNew' || !(await this.evictOldest()))
        throw new OutboxFullError(this.limits);
    }
    return this.enqueueRecord(input, tag);
  }

  private enqueueRecord(input: NewRecord, tag: Tag | undefined) {
    const record: StoredRecord = {
      seq: this.meta.nextSeq,
      queuedAt: Date.now(),
      topic: input.topic,
      payload: input.payload,
      qos: input.qos,
      retain: input.retain,
    };
    if (input.properties !== undefined) record.properties = input.properties;
    if (input.msg !== undefined) record.msg = input.msg;
    this.meta.nextSeq++;
    this.meta.count++;
    this.meta.bytes += input.payload.length;
    if (tag !== undefined) this.tags.set(record.seq, tag);
    const committed = this.enqueueWrite(record, undefined, true);
    if (tag !== undefined) committed.catch(() => this.tags.delete(record.seq));
    return { record, committed };
  }

  /** Removes the oldest record that is not in flight; false when there is none. */
  private async evictOldest(): Promise<boolean> {
    // A burst can fill the outbox before its first write lands: let it land, then choose.
    if (this.ready.length === 0 && this.writing) await this.flush();
    if (this.ready.length === 0 && this.readCursor < this.committedSeq) await this.load();
    const oldest = this.ready.shift();
    if (!oldest) return false;
    this.attempts.delete(oldest.seq);
    const tag = this.tags.get(oldest.seq);
    this.tags.delete(oldest.seq);
    this.emit('dropped', oldest, tag);
    // Written in the same batch as the append that made room, ahead of it.
    void this.remove(oldest, true).catch(() => undefined);
    return true;
  }

  private remove(record: StoredRecord, sync: boolean): Promise<void> {
    this.meta.count--;
    this.meta.bytes -= record.payload.length;
    return this.enqueueWrite(undefined, record.seq, sync);
  }

  /** Adds a put or a delete to the next write; the promise settles when that write has (shared by the batch). */
  private enqueueWrite(put: StoredRecord | undefined, del: number | undefined, sync: boolean): Promise<void> {
    const pending = this.pending;
    if (put) pending.put.push(put);
    if (del !== undefined) pending.del.push(del);
    pending.sync ||= sync;
    pending.written ??= pendingCommit();
    if (!this.writing) this.writing = this.writeLoop();
    return pending.written.committed;
  }

  /** Writes pending changes, one batch at a time, until none are left. */
  private async writeLoop(): Promise<void> {
    // Let the appends of this tick join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.written) {
      const batch = this.pending;
      const written = batch.written as PendingCommit;
      this.pending = { put: [], del: [], sync: false, written: undefined };
      try {
        await this.store.write({ put: batch.put, del: batch.del, meta: { ...this.meta }, sync: batch.sync });
      } catch (error) {
        // Nothing of the batch is stored: the appends fail, the deletes go with the next write.
        for (const record of batch.put) {
          this.meta.count--;
          this.meta.bytes -= record.payload.length;
        }
        this.pending.del.push(...batch.del);
        written.reject(error as Error);
        continue;
      }
      this.onCommitted(batch.put);
      written.resolve();
    }
    this.writing = undefined;
  }

  private onCommitted(records: StoredRecord[]) {
    if (records.length === 0) return;
    const caughtUp = this.readCursor === this.committedSeq && !this.loading;
    this.committedSeq = records[records.length - 1].seq;
    // Records go straight to memory while the reader is caught up, as many as there is room for;
    // the store has the rest, read back when the window has room.
    if (caughtUp) {
      const room = Math.min(records.length, READ_AHEAD - this.ready.length);
      for (let i = 0; i < room; i++) this.ready.push(records[i]);
      if (room > 0) this.readCursor = records[room - 1].seq;
    }
    this.emit('ready');
  }

  private async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const records = await this.store.read(this.readCursor, READ_AHEAD);
        for (const record of records) {
          if (record.seq <= this.readCursor || record.seq > this.committedSeq) continue;
          this.ready.push(record);
          this.readCursor = record.seq;
        }
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}
