import { EventEmitter } from 'node:events';
import type { OutboxMeta, OutboxStore, StoredRecord } from './store.js';
import { noPendingWrite, type PendingWrite } from './outbox-types.js';
import type { Delivery, DropReason, NewRecord, OutboxEvents } from './outbox-types.js';
import { pendingCommit, type PendingCommit } from '../pending-commit.js';
import { OutboxFullError, type OutboxLimits } from './limits.js';

export type { Delivery, NewRecord, OutboxEvents } from './outbox-types.js';

/** How many records are read ahead from the store into memory: memory stays bounded whatever the backlog. */
const READ_AHEAD = 500;

/** A failed read from the store is tried again after this many milliseconds. */
const READ_RETRY = 1000;

/**
 * A durable, ordered, bounded queue of messages to publish. Appends are group
 * committed: everything appended while one write is on its way to the disk goes
 * in the next write, so durability costs one fsync per batch, not per message.
 * A record can be sent while its write waits: one the broker acknowledges before
 * then is safe already and leaves the batch, so a broker faster than the disk
 * (one in the same process, most on a LAN) costs no write and no fsync at all.
 * Only a window of records is held in memory; the rest stays in the store.
 *
 * `LiveMessage` is what the caller keeps in memory beside a record it appended in this process
 * (the out node's msg, send and done); it comes back with the record's fate and is gone after a
 * restart, when only the record is left.
 */
export class Outbox<LiveMessage = unknown> extends EventEmitter<OutboxEvents<LiveMessage>> {
  private meta: OutboxMeta;
  /** Not in flight, seq ≤ readCursor, in seq order; committed or waiting for their write. */
  private readonly ready: StoredRecord[] = [];
  /** Highest seq that came into memory; records above it are only in the store, or on their way there. */
  private readCursor: number;
  /** Highest committed seq. */
  private committedSeq: number;
  private readonly inFlight = new Map<number, StoredRecord>();
  /** Acknowledged by the broker, kept (still stored) until the subscribers' receipts come: see awaitReceipt. */
  private readonly awaiting = new Map<number, StoredRecord>();
  /** Sends by this process that ended without an acknowledgment, by seq. */
  private readonly attempts = new Map<number, number>();
  /** The live message of each record appended in this process, kept from its seq on: no event misses it. */
  private readonly liveMessages = new Map<number, LiveMessage>();
  private readonly sentBeforeOpen: number;
  /**
   * Records up to this seq were stored before the bounds shrank below what the outbox held: they
   * were accepted, so they are delivered and never evicted to make room (0: none is).
   */
  private readonly keptOverBoundUpTo: number;
  private pending: PendingWrite = noPendingWrite();
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
    this.keptOverBoundUpTo = this.overBound ? meta.nextSeq - 1 : 0;
  }

  /** Opens the store and reads the first window of what it holds. */
  static async open<LiveMessage = unknown>(
    store: OutboxStore,
    limits: OutboxLimits,
  ): Promise<Outbox<LiveMessage>> {
    const { meta, recoveryNotes } = await store.open();
    const outbox = new Outbox<LiveMessage>(store, limits, meta, recoveryNotes);
    await outbox.load();
    return outbox;
  }

  /** Messages held: waiting and in flight. */
  get count(): number {
    return this.meta.count;
  }

  get bytes(): number {
    return this.meta.bytes;
  }

  /** Whether it holds more than its bounds allow: only after they shrank below what was stored. */
  get overBound(): boolean {
    return this.meta.count > this.limits.maxMessages || this.meta.bytes > this.limits.maxBytes;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  get awaitingCount(): number {
    return this.awaiting.size;
  }

  /** When the oldest message held was queued: the lowest seq, which is in memory (read in seq order). */
  get oldestQueuedAt(): number | undefined {
    const held = [this.ready.at(0), ...this.inFlight.values(), ...this.awaiting.values()];
    return held.reduce((first, next) => (next && (!first || next.seq < first.seq) ? next : first))?.queuedAt;
  }

  /**
   * Resolves once the record is safe: on disk, or acknowledged before its write (which then
   * leaves it out). Rejects with OutboxFullError under `rejectNew` when full.
   */
  append(input: NewRecord, live?: LiveMessage): Promise<void> {
    // Only the room check and the enqueueing are serialised; the disk writes of many appends share one batch.
    if (this.chainedAppends === 0 && !this.closed && this.hasRoomFor(input.payload.length)) {
      // Nothing ahead of it and nothing to evict: it is enqueued now, without a turn through the chain,
      // and given the promise of its batch, shared with every other append in it.
      return this.enqueueRecord(input, live);
    }
    this.chainedAppends++;
    const reserved = this.appendChain.then(() => this.reserve(input, live));
    this.appendChain = reserved.catch(() => undefined).then(() => this.chainedAppends--);
    return reserved.then(({ committed }) => committed);
  }

  private hasRoomFor(size: number): boolean {
    return this.meta.count + 1 <= this.limits.maxMessages && this.meta.bytes + size <= this.limits.maxBytes;
  }

  /**
   * Up to `max` records to send, oldest first, from those in memory; they are in flight until
   * acknowledged or released. When memory runs low the next records are read from the store, and
   * 'ready' says when they are in.
   */
  take(max: number): Delivery<LiveMessage>[] {
    const deliveries: Delivery<LiveMessage>[] = [];
    while (deliveries.length < max && this.ready.length > 0) {
      const record = this.ready.shift() as StoredRecord;
      this.inFlight.set(record.seq, record);
      const earlier = this.attempts.get(record.seq) ?? 0;
      deliveries.push({
        record,
        live: this.liveMessages.get(record.seq),
        attempt: earlier + 1 + (record.seq <= this.sentBeforeOpen ? 1 : 0),
        possiblySent: earlier > 0 || record.seq <= this.sentBeforeOpen,
      });
      if (record.seq > this.meta.sentHighWater) this.meta.sentHighWater = record.seq;
    }
    this.readAhead();
    return deliveries;
  }

  /**
   * The broker has it (or it was written, at QoS 0): forget it. Resolves once that is written; a
   * failed delete is retried with the next write, and at worst the message is sent again after a restart.
   */
  acknowledge(seq: number): Promise<void> {
    // A receipt may settle a record awaiting it, in flight, or (sent before a restart) not sent again yet.
    const record = this.inFlight.get(seq) ?? this.awaiting.get(seq) ?? this.takeReady(seq);
    if (!record || this.closed) return Promise.resolve();
    this.inFlight.delete(seq);
    this.awaiting.delete(seq);
    this.attempts.delete(seq);
    this.liveMessages.delete(seq);
    return this.remove(record);
  }

  /**
   * The broker has it, but the message stays until its receipts come (`until: subscriber`): still
   * stored, out of the broker's window, until acknowledge (receipts) or release (send it again).
   */
  awaitReceipt(seq: number): void {
    const record = this.inFlight.get(seq);
    if (!record) return;
    this.inFlight.delete(seq);
    this.awaiting.set(seq, record);
  }

  /** Sending failed, or its receipts did not come: the record goes back to the queue, ahead of newer ones. */
  release(seq: number): void {
    const record = this.inFlight.get(seq) ?? this.awaiting.get(seq);
    if (!record) return;
    this.inFlight.delete(seq);
    this.awaiting.delete(seq);
    this.attempts.set(seq, (this.attempts.get(seq) ?? 0) + 1);
    let index = this.ready.length;
    while (index > 0 && this.ready[index - 1].seq > seq) index--;
    this.ready.splice(index, 0, record);
  }

  private takeReady(seq: number): StoredRecord | undefined {
    const index = this.ready.findIndex((record) => record.seq === seq);
    return index < 0 ? undefined : this.ready.splice(index, 1)[0];
  }

  /** Writes what is pending, then closes the store; in-flight records stay stored and are sent after reopening. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.appendChain;
    await this.flush();
    this.closed = true;
    this.liveMessages.clear();
    await this.store.close();
  }

  /** Deletes every stored record (the node was deleted). */
  async destroy(): Promise<void> {
    this.closed = true;
    await this.writing;
    await this.store.destroy();
  }

  /**
   * Makes room for the record (or refuses it), then enqueues it. The promise of its batch comes
   * wrapped, so the chain of appends does not wait for the write.
   */
  private async reserve(
    input: NewRecord,
    live: LiveMessage | undefined,
  ): Promise<{ committed: Promise<void> }> {
    if (this.closed) throw new Error('the outbox is closed');
    while (!this.hasRoomFor(input.payload.length)) {
      if (this.limits.overflow === 'rejectNew' || !(await this.evictOldest()))
        throw new OutboxFullError(this.limits);
    }
    return { committed: this.enqueueRecord(input, live) };
  }

  private enqueueRecord(input: NewRecord, live: LiveMessage | undefined): Promise<void> {
    const record: StoredRecord = {
      seq: this.meta.nextSeq,
      queuedAt: Date.now(),
      topic: input.topic,
      payload: input.payload,
      qos: input.qos,
      retain: input.retain,
    };
    if (input.properties !== undefined) record.properties = input.properties;
    if (input.messageId !== undefined) record.messageId = input.messageId;
    if (input.msg !== undefined) record.msg = input.msg;
    this.meta.nextSeq++;
    this.meta.count++;
    this.meta.bytes += input.payload.length;
    if (live !== undefined) this.liveMessages.set(record.seq, live);
    // In the batch before anything can acknowledge it, so the acknowledgment finds it there.
    this.pending.put.set(record.seq, record);
    const { committed } = this.nextWrite();
    // While every earlier record came into memory and the window has room, this one joins it now,
    // ahead of its write; otherwise the store hands it over once it is committed.
    if (this.readCursor === record.seq - 1 && this.ready.length < READ_AHEAD) {
      this.ready.push(record);
      this.readCursor = record.seq;
      this.emit('ready');
    }
    return committed;
  }

  /** Removes the oldest record that is not in flight and may be evicted; false when there is none. */
  private async evictOldest(): Promise<boolean> {
    // Records that found the memory window full come back through the store: let their write land, then read them.
    if (this.ready.length === 0 && this.writing) await this.flush();
    if (this.ready.length === 0 && this.readCursor < this.committedSeq) await this.load();
    // `ready` is in seq order: when its first record is kept over the bound, so are all before it.
    if (this.ready.length === 0 || this.ready[0].seq <= this.keptOverBoundUpTo) return false;
    // Written in the same batch as the append that made room, ahead of it.
    this.drop(this.ready.shift() as StoredRecord, 'overflow');
    return true;
  }

  /**
   * Drops every message not handed to the broker yet, each with its 'dropped' event (`purged`); what
   * is in flight or awaits its receipts finishes its exchange. Resolves to the number dropped.
   */
  async purge(): Promise<number> {
    const upTo = this.meta.nextSeq - 1;
    let purged = 0;
    while (!this.closed) {
      await this.flush();
      if (this.ready.length === 0 && this.readCursor < this.committedSeq) await this.load();
      const index = this.ready.findIndex((record) => record.seq > upTo);
      const records = this.ready.splice(0, index < 0 ? this.ready.length : index);
      if (records.length === 0) break;
      for (const record of records) this.drop(record, 'purged');
      purged += records.length;
    }
    await this.flush();
    return purged;
  }

  private drop(record: StoredRecord, reason: DropReason): void {
    this.attempts.delete(record.seq);
    const live = this.liveMessages.get(record.seq);
    this.liveMessages.delete(record.seq);
    this.emit('dropped', record, live, reason);
    void this.remove(record);
  }

  /** Forgets a record: taken out of the next write when it is still waiting there, deleted from the store otherwise. */
  private remove(record: StoredRecord): Promise<void> {
    this.meta.count--;
    this.meta.bytes -= record.payload.length;
    if (!this.pending.put.delete(record.seq)) this.pending.del.push(record.seq);
    return this.nextWrite().settled;
  }

  /** The next write, for a change just added to `pending`: its promise, shared by every change in it. */
  private nextWrite(): PendingCommit {
    const pending = this.pending;
    pending.written ??= pendingCommit();
    if (!this.writing) this.writing = this.writeLoop();
    return pending.written;
  }

  /** Writes pending changes, one batch at a time, until none are left. */
  private async writeLoop(): Promise<void> {
    // Let the appends of this tick join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.written) {
      const batch = this.pending;
      const written = batch.written as PendingCommit;
      this.pending = noPendingWrite();
      const put = [...batch.put.values()];
      try {
        // New records must reach the disk before their appends resolve; deletes alone can wait for the next fsync.
        await this.store.write({ put, del: batch.del, meta: { ...this.meta }, sync: put.length > 0 });
      } catch (error) {
        // Nothing of the batch is stored: its appends fail, the deletes go with the next write.
        this.withdraw(put);
        this.pending.del.push(...batch.del);
        written.reject(error as Error);
        continue;
      }
      if (put.length > 0) this.committedSeq = put[put.length - 1].seq;
      // Records that found the window full are only in the store: the sender reads them from there.
      if (this.readCursor < this.committedSeq) this.emit('ready');
      written.resolve();
    }
    this.writing = undefined;
  }

  /** Records whose write failed: their appends are told so, and they are not sent any more. */
  private withdraw(records: StoredRecord[]) {
    if (records.length === 0) return;
    const failed = new Set<number>();
    for (const record of records) {
      failed.add(record.seq);
      this.meta.count--;
      this.meta.bytes -= record.payload.length;
      // One already in flight may still arrive; its acknowledgment then finds nothing to forget.
      this.inFlight.delete(record.seq);
      this.attempts.delete(record.seq);
      this.liveMessages.delete(record.seq);
    }
    let kept = 0;
    for (const record of this.ready) if (!failed.has(record.seq)) this.ready[kept++] = record;
    this.ready.length = kept;
  }

  /** Starts reading the next records from the store when memory runs low; 'ready' says when they are in. */
  private readAhead() {
    if (this.loading || this.closed || this.readCursor >= this.committedSeq) return;
    if (this.ready.length >= READ_AHEAD / 2) return;
    this.load().then(
      () => this.emit('ready'),
      () => setTimeout(() => this.emit('ready'), READ_RETRY),
    );
  }

  private async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      try {
        // Every record up to here is in the store (or acknowledged and gone) by the time the read starts.
        const upTo = this.committedSeq;
        const room = READ_AHEAD - this.ready.length;
        if (room <= 0) return;
        const records = await this.store.read(this.readCursor, room);
        for (const record of records) {
          if (record.seq <= this.readCursor || record.seq > upTo) continue;
          this.ready.push(record);
          this.readCursor = record.seq;
        }
        // The store had no more: the reader is caught up, and new records can come into memory directly.
        if (records.length < room && this.readCursor < upTo) this.readCursor = upTo;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}
