import { EventEmitter } from 'node:events';
import type { SubscriberReceipt } from '../receipt.js';
import { expectationMet, type Expectation } from '../receipt-expectation.js';
import type { Delivery, Outbox } from './outbox.js';
import type { DeliveryPolicy } from './sender.js';
import type { StoredRecord } from './store.js';

export interface ReceiptOptions {
  expectation: Expectation;
  /** Milliseconds to wait for the receipts after the broker's acknowledgment before sending again; doubles per attempt. */
  timeoutMs: number;
  /** Milliseconds after which a message whose receipts have not all come leaves the outbox as expired; 0: never. */
  giveUpAfterMs: number;
  /** Messages awaiting receipts at once; sending pauses at this many, so memory stays bounded. */
  maxAwaiting: number;
}

/**
 * How one message ended, or (`failed`) a negative receipt that leaves it in the outbox to be sent
 * again: `delivered` once the expected receipts came, `rejected` on a final negative receipt (the
 * subscriber quarantined it), `expired` when `giveUpAfterMs` passed first.
 */
export interface EndToEndReceipt {
  /** Identity of the message in its outbox. */
  id: string;
  messageId: string;
  status: 'delivered' | 'failed' | 'rejected' | 'expired';
  /** Sends made so far (at least this many, when a restart came between them). */
  attempts: number;
  queuedAt: number;
  /** The broker's acknowledgment of the latest send, when this process saw one. */
  ackedAt?: number;
  /** When the receipt that decided it arrived here (or when it expired). */
  at: number;
  /** Milliseconds from the latest send to the deciding receipt, when this process made that send. */
  latency?: number;
  /** The positive receipts that came, one per subscriber. */
  receipts: SubscriberReceipt[];
  /** The subscriber's error, for `failed` and `rejected`. */
  error?: string;
  /** The subscriber that sent the negative receipt. */
  by?: string;
}

export interface WaiterEvents<LiveMessage> {
  receipt: [receipt: EndToEndReceipt, record: StoredRecord, live: LiveMessage | undefined];
}

/** Receipts for messages not (yet) awaited here, e.g. come before the broker's acknowledgment: at most this many. */
const MAX_UNMATCHED = 10_000;
/** Message ids settled lately: a receipt for one of them (a repeat) is ignored. */
const MAX_SETTLED = 10_000;
/** Bounds of the time between two looks for messages whose receipts are late. */
const MIN_SWEEP_MS = 10;
const MAX_SWEEP_MS = 1000;
/** The wait for receipts doubles per attempt up to this many times the first. */
const MAX_BACKOFF_FACTOR = 16;

interface Awaited<LiveMessage> {
  delivery: Delivery<LiveMessage>;
  ackedAt: number;
  /** When it is sent again (or expires) if its receipts have not come. */
  deadline: number;
}

/** What is known of one message id's receipts before it is settled. */
interface Heard {
  positive: Map<string, SubscriberReceipt>;
  /** A final negative receipt: the message is settled as rejected when it is next seen. */
  rejection?: SubscriberReceipt;
}

/**
 * Keeps each message of an out node with `until: subscriber` in its outbox after the broker's
 * acknowledgment, until the receipts the expectation names come from the subscribing flows;
 * sends it again (same message id, so dedupe drops the repeat) when they do not come in time.
 * The outbox keeps the record across restarts; what was heard of the receipts is kept in memory
 * only: after a restart the message is sent again and its subscribers answer again.
 */
export class ReceiptWaiter<LiveMessage>
  extends EventEmitter<WaiterEvents<LiveMessage>>
  implements DeliveryPolicy<LiveMessage>
{
  private readonly awaited = new Map<string, Awaited<LiveMessage>>();
  private readonly heard = new Map<string, Heard>();
  private readonly sentAt = new Map<string, number>();
  private readonly settled = new Set<string>();
  /**
   * The settled ids in the order they were settled, a ring of MAX_SETTLED: the oldest leaves the set
   * when a new one comes. Not the set's own first entry: a Set deleted from the front keeps the
   * deleted slots until it is rehashed, and finding its first entry walks over them, thousands per
   * settled message.
   */
  private readonly settledOrder: (string | undefined)[] = new Array<string | undefined>(MAX_SETTLED);
  private settledNext = 0;
  private closed = false;
  /** One timer for every message awaiting receipts, not one each: a timer per message cost more than its receipt. */
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Milliseconds between sweeps: a tenth of the receipt timeout, so a resend comes at most that late. */
  private readonly sweepEvery: number;

  constructor(
    private readonly outbox: Outbox<LiveMessage>,
    private readonly options: ReceiptOptions,
    /** Asks the sender to send what is ready: a message went back to the queue, or one left the window. */
    private readonly sendAgain: () => void,
  ) {
    super();
    this.sweepEvery = Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, options.timeoutMs / 10));
  }

  get maxAwaiting(): number {
    return this.options.maxAwaiting;
  }

  /** Messages the broker has that wait for their receipts. */
  get awaitingCount(): number {
    return this.awaited.size;
  }

  beforeSend(delivery: Delivery<LiveMessage>): boolean {
    const { messageId } = delivery.record;
    if (messageId === undefined) return true;
    const now = Date.now();
    if (this.expired(delivery.record, now)) {
      this.settle(delivery, 'expired', now);
      return false;
    }
    // Receipts may come before a send: those of a send made before a restart.
    if (this.decided(delivery, now)) return false;
    // A message sent again later with the id of one settled before (msg.messageId) is answered anew.
    this.settled.delete(messageId);
    this.sentAt.set(messageId, now);
    return true;
  }

  holdAfterBrokerAck(delivery: Delivery<LiveMessage>, ackedAt: number): boolean {
    const { messageId } = delivery.record;
    // A record stored before receipts were asked for has no id to be answered by: the broker settles it.
    if (messageId === undefined || this.closed) return false;
    if (this.decided(delivery, ackedAt, ackedAt)) return true;
    const backoff = Math.min(2 ** (delivery.attempt - 1), MAX_BACKOFF_FACTOR) * this.options.timeoutMs;
    const giveUpIn = this.options.giveUpAfterMs
      ? delivery.record.queuedAt + this.options.giveUpAfterMs - ackedAt
      : Infinity;
    this.awaited.set(messageId, { delivery, ackedAt, deadline: ackedAt + Math.min(backoff, giveUpIn) });
    this.sweepSoon();
    return true;
  }

  /** A receipt from a subscribing flow: settles its message when it completes what is expected. */
  receive(receipt: SubscriberReceipt): void {
    const { messageId } = receipt;
    if (this.closed || this.settled.has(messageId)) return;
    const heard = this.heardOf(messageId);
    const awaited = this.awaited.get(messageId);
    if (!receipt.ok) {
      if (receipt.final) heard.rejection = receipt;
      else if (awaited)
        this.tell(awaited.delivery, 'failed', Date.now(), { receipt, ackedAt: awaited.ackedAt });
    } else {
      heard.positive.set(receipt.by, receipt);
    }
    if (awaited) this.decided(awaited.delivery, Date.now(), awaited.ackedAt);
  }

  /** Every message awaiting its receipts goes again now, as if its deadline had passed. */
  sendAwaitedNow(): void {
    if (this.closed || this.awaited.size === 0) return;
    const now = Date.now();
    for (const awaited of this.awaited.values()) awaited.deadline = Math.min(awaited.deadline, now);
    clearTimeout(this.sweepTimer);
    this.sweep();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.sweepTimer);
    this.awaited.clear();
  }

  private heardOf(messageId: string): Heard {
    let heard = this.heard.get(messageId);
    if (!heard) {
      heard = { positive: new Map() };
      this.heard.set(messageId, heard);
      // Receipts for ids never seen (another node's, or a message long gone) must not pile up.
      if (this.heard.size > MAX_UNMATCHED) this.heard.delete(this.heard.keys().next().value as string);
    }
    return heard;
  }

  /** Settles the message when what was heard decides it; false when it still waits. */
  private decided(delivery: Delivery<LiveMessage>, now: number, ackedAt?: number): boolean {
    const heard = this.heard.get(delivery.record.messageId as string);
    if (!heard) return false;
    if (heard.rejection) {
      this.settle(delivery, 'rejected', now, { receipt: heard.rejection, ackedAt });
      return true;
    }
    if (!expectationMet(this.options.expectation, heard.positive)) return false;
    this.settle(delivery, 'delivered', now, { ackedAt });
    return true;
  }

  private sweepSoon() {
    if (this.sweepTimer || this.closed) return;
    this.sweepTimer = setTimeout(() => this.sweep(), this.sweepEvery);
  }

  /** Sends again, or expires, the messages whose deadline has passed. */
  private sweep() {
    this.sweepTimer = undefined;
    const now = Date.now();
    for (const [messageId, { deadline }] of this.awaited) if (deadline <= now) this.timedOut(messageId);
    if (this.awaited.size > 0) this.sweepSoon();
  }

  private timedOut(messageId: string) {
    const awaited = this.awaited.get(messageId);
    if (!awaited) return;
    this.awaited.delete(messageId);
    const now = Date.now();
    if (this.expired(awaited.delivery.record, now))
      return this.settle(awaited.delivery, 'expired', now, { ackedAt: awaited.ackedAt });
    this.outbox.release(awaited.delivery.record.seq);
    this.sendAgain();
  }

  private expired(record: StoredRecord, now: number): boolean {
    return this.options.giveUpAfterMs > 0 && now - record.queuedAt >= this.options.giveUpAfterMs;
  }

  private settle(
    delivery: Delivery<LiveMessage>,
    status: 'delivered' | 'rejected' | 'expired',
    now: number,
    detail: { receipt?: SubscriberReceipt; ackedAt?: number } = {},
  ) {
    const messageId = delivery.record.messageId as string;
    const awaited = this.awaited.get(messageId);
    this.awaited.delete(messageId);
    this.remember(messageId);
    void this.outbox.acknowledge(delivery.record.seq);
    this.tell(delivery, status, now, { ...detail, ackedAt: detail.ackedAt ?? awaited?.ackedAt });
    this.heard.delete(messageId);
    this.sentAt.delete(messageId);
    // Room in the window of messages awaiting receipts: sending may go on.
    if (awaited) this.sendAgain();
  }

  /** Keeps `messageId` among the settled ones, forgetting the oldest of the last MAX_SETTLED. */
  private remember(messageId: string) {
    const oldest = this.settledOrder[this.settledNext];
    if (oldest !== undefined) this.settled.delete(oldest);
    this.settled.add(messageId);
    this.settledOrder[this.settledNext] = messageId;
    this.settledNext = (this.settledNext + 1) % MAX_SETTLED;
  }

  private tell(
    delivery: Delivery<LiveMessage>,
    status: EndToEndReceipt['status'],
    now: number,
    { receipt, ackedAt }: { receipt?: SubscriberReceipt; ackedAt?: number },
  ) {
    const { record } = delivery;
    const messageId = record.messageId as string;
    const outcome: EndToEndReceipt = {
      id: String(record.seq),
      messageId,
      status,
      attempts: delivery.attempt,
      queuedAt: record.queuedAt,
      at: now,
      receipts: [...(this.heard.get(messageId)?.positive.values() ?? [])],
    };
    if (ackedAt !== undefined) outcome.ackedAt = ackedAt;
    const sentAt = this.sentAt.get(messageId);
    if (sentAt !== undefined && status !== 'expired') outcome.latency = now - sentAt;
    if (receipt) {
      outcome.by = receipt.by;
      if (receipt.error !== undefined) outcome.error = receipt.error;
    }
    this.emit('receipt', outcome, record, delivery.live);
  }
}
