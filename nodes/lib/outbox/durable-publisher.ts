import { EventEmitter } from 'node:events';
import type { ConnectionError, PublishingConnection } from '../connection/types.js';
import { Outbox, type NewRecord } from './outbox.js';
import type { DropReason } from './outbox-types.js';
import type { OutboxLimits } from './limits.js';
import { OutboxSender } from './sender.js';
import { ReceiptWaiter, type EndToEndReceipt, type ReceiptOptions } from './receipt-waiter.js';
import type { SubscriberReceipt } from '../receipt.js';
import type { OutboxStore, StoredRecord } from './store.js';

/** What the broker's acknowledgment of one message says, for delivery receipts. */
export interface Receipt {
  /** Identity of the message in its outbox, stable across resends and restarts. */
  id: string;
  /** Sends made (at least this many, when a restart came between them). */
  attempts: number;
  queuedAt: number;
  ackedAt: number;
  /** MQTT 5 reason code of the acknowledgment, when there is one (e.g. 16: no matching subscribers). */
  reasonCode?: number;
}

export interface PublisherEvents<LiveMessage> {
  /** `live` is the live message `accept` was given, or undefined for a message accepted before a restart. */
  delivered: [receipt: Receipt, record: StoredRecord, live: LiveMessage | undefined];
  refused: [error: ConnectionError, record: StoredRecord, live: LiveMessage | undefined];
  /** Evicted to respect a bound (`overflow`), or purged by an admin (`purged`). */
  dropped: [record: StoredRecord, live: LiveMessage | undefined, reason: DropReason];
  /** `until: subscriber`: what the subscribers' receipts decided, or a negative receipt (see EndToEndReceipt). */
  'end-to-end': [receipt: EndToEndReceipt, record: StoredRecord, live: LiveMessage | undefined];
  /** The number of queued messages changed. */
  changed: [];
}

export interface PublisherOptions {
  /** Where the messages are kept: a LevelOutboxStore in a node's directory. */
  store: OutboxStore;
  limits: OutboxLimits;
  connection: PublishingConnection;
  window?: number;
  /** Keep each message until the subscribers' receipts come, not only the broker's acknowledgment. */
  receipts?: ReceiptOptions;
}

/**
 * A durable outbox and its sender, for one out node: accepts messages to disk,
 * publishes them in order when connected and reports each one's fate, with
 * its live message (see Outbox) while it is still in this process.
 */
export class DurablePublisher<LiveMessage> extends EventEmitter<PublisherEvents<LiveMessage>> {
  private constructor(
    readonly outbox: Outbox<LiveMessage>,
    private readonly sender: OutboxSender<LiveMessage>,
    private readonly waiter: ReceiptWaiter<LiveMessage> | undefined,
  ) {
    super();
    waiter?.on('receipt', (receipt, record, live) => {
      this.emit('end-to-end', receipt, record, live);
      if (receipt.status !== 'failed') this.emit('changed');
    });
    sender.on('delivered', ({ record, attempt, live }, ackedAt, reasonCode) => {
      const receipt: Receipt = {
        id: String(record.seq),
        attempts: attempt,
        queuedAt: record.queuedAt,
        ackedAt,
      };
      if (reasonCode !== undefined) receipt.reasonCode = reasonCode;
      this.emit('delivered', receipt, record, live);
      this.emit('changed');
    });
    sender.on('refused', ({ record, live }, error) => {
      this.emit('refused', error, record, live);
      this.emit('changed');
    });
    outbox.on('dropped', (record, live, reason) => {
      this.emit('dropped', record, live, reason);
      this.emit('changed');
    });
  }

  static async open<LiveMessage>(options: PublisherOptions): Promise<DurablePublisher<LiveMessage>> {
    const outbox = await Outbox.open<LiveMessage>(options.store, options.limits);
    // The waiter sends a message again through the sender, which asks the waiter before each send.
    const sendAgain = () => sender.kick();
    const waiter = options.receipts && new ReceiptWaiter<LiveMessage>(outbox, options.receipts, sendAgain);
    const sender = new OutboxSender<LiveMessage>(outbox, options.connection, options.window, waiter);
    const publisher = new DurablePublisher<LiveMessage>(outbox, sender, waiter);
    sender.kick();
    return publisher;
  }

  get queued(): number {
    return this.outbox.count;
  }

  /** Messages the broker has that wait for the subscribers' receipts. */
  get awaitingReceipts(): number {
    return this.waiter?.awaitingCount ?? 0;
  }

  /** A receipt from a subscribing flow (`until: subscriber`); ignored otherwise. */
  receive(receipt: SubscriberReceipt): void {
    this.waiter?.receive(receipt);
  }

  /**
   * Resolves once the message is safe (on disk, or acknowledged before its write); rejects with
   * OutboxFullError under rejectNew. `live` comes back with the message's delivered, refused or dropped event.
   */
  accept(record: NewRecord, live?: LiveMessage): Promise<void> {
    const accepted = this.outbox.append(record, live);
    this.emit('changed');
    return accepted;
  }

  /**
   * Sends what waits now: a send that failed is not waited out, nor are the receipts of a message
   * sent already (`until: subscriber`), which goes again.
   */
  retryNow(): void {
    this.waiter?.sendAwaitedNow();
    this.sender.retryNow();
  }

  /** Drops what waits to be sent (see Outbox.purge); resolves to the number dropped. */
  async purge(): Promise<number> {
    const purged = await this.outbox.purge();
    this.emit('changed');
    return purged;
  }

  /** Stops sending and closes the outbox; with `discard` (the node was deleted) its messages are deleted too. */
  async close(discard: boolean): Promise<number> {
    this.waiter?.close();
    await this.sender.stop();
    const left = this.outbox.count;
    if (discard) await this.outbox.destroy();
    else await this.outbox.close();
    return left;
  }
}
