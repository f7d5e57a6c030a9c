import { EventEmitter } from 'node:events';
import type { IClientPublishOptions } from 'mqtt';
import { ConnectionError, type PublishingConnection } from '../connection/types.js';
import type { Delivery, Outbox } from './outbox.js';
import { decodeProperties } from './properties.js';

export interface SenderEvents<LiveMessage> {
  /** The broker acknowledged it (QoS 1/2) or it was written (QoS 0); it has left the outbox. */
  delivered: [delivery: Delivery<LiveMessage>, ackedAt: number, reasonCode: number | undefined];
  /** The broker refused this message for good (an MQTT 5 reason code ≥ 0x80); it has left the outbox. */
  refused: [delivery: Delivery<LiveMessage>, error: ConnectionError];
}

/**
 * What happens around a send when the message waits for more than the broker (receipts from the
 * subscribers, see receipt-waiter.ts); without one, the broker's acknowledgment settles a message.
 */
export interface DeliveryPolicy<LiveMessage> {
  /** Messages the broker acknowledged that may wait for their receipts at once: sending pauses at this many. */
  readonly maxAwaiting: number;
  /** Just before a send: false when the message was settled meanwhile (its receipts came, it expired). */
  beforeSend(delivery: Delivery<LiveMessage>): boolean;
  /** The broker acknowledged it: true keeps it in the outbox, awaiting its receipts. */
  holdAfterBrokerAck(delivery: Delivery<LiveMessage>, ackedAt: number): boolean;
}

/** In-flight window when the broker sets no lower Receive Maximum. */
export const DEFAULT_WINDOW = 20;

/** Milliseconds sending waits after a failed send while the connection says it is up. */
const RETRY_AFTER_FAILURE = 500;

/** Milliseconds `stop()` waits for in-flight messages to be acknowledged. */
const STOP_GRACE = 2000;

/**
 * Drains an outbox through a connection, oldest first, with at most `window`
 * messages in flight, so a backlog never floods the broker after an outage.
 * A message the connection could not take goes back to the outbox and is sent
 * again when the connection returns.
 */
export class OutboxSender<LiveMessage = unknown> extends EventEmitter<SenderEvents<LiveMessage>> {
  private draining = false;
  private drainAgain = false;
  /** Set while sending waits after a failed send, until a new connection status or RETRY_AFTER_FAILURE. */
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly onStatus = () => {
    // A new connection, or the same one lost: no reason left to wait.
    this.clearRetry();
    this.kick();
  };
  private readonly onReady = () => this.kick();

  constructor(
    private readonly outbox: Outbox<LiveMessage>,
    private readonly connection: PublishingConnection,
    private readonly maxWindow = DEFAULT_WINDOW,
    private readonly policy?: DeliveryPolicy<LiveMessage>,
  ) {
    super();
    connection.on('status', this.onStatus);
    outbox.on('ready', this.onReady);
  }

  /** The window in force: ours, or the broker's Receive Maximum when lower. */
  get window(): number {
    return Math.min(this.maxWindow, this.connection.receiveMaximum ?? this.maxWindow);
  }

  /** Sends what the window allows; safe to call at any time, from within a send too. */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      // An acknowledgment or a new record during a send: the loop below goes round once more.
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.drainAgain = false;
        while (
          !this.stopped &&
          !this.retryTimer &&
          this.connection.connected &&
          this.outbox.inFlightCount < this.window &&
          (!this.policy || this.outbox.awaitingCount < this.policy.maxAwaiting)
        ) {
          const deliveries = this.outbox.take(this.window - this.outbox.inFlightCount);
          if (deliveries.length === 0) break;
          for (const delivery of deliveries) this.send(delivery);
        }
      } while (this.drainAgain && !this.stopped);
    } finally {
      this.draining = false;
    }
  }

  /** Sends now what waits after a failed send, instead of after RETRY_AFTER_FAILURE. */
  retryNow(): void {
    this.clearRetry();
    this.kick();
  }

  /** Stops sending and waits a moment for the messages in flight; the rest stay in the outbox. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearRetry();
    this.connection.off('status', this.onStatus);
    this.outbox.off('ready', this.onReady);
    const deadline = Date.now() + STOP_GRACE;
    while (this.outbox.inFlightCount > 0 && this.connection.connected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private clearRetry() {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private send(delivery: Delivery<LiveMessage>) {
    const { record } = delivery;
    if (this.policy && !this.policy.beforeSend(delivery)) return;
    const options: IClientPublishOptions = { qos: record.qos, retain: record.retain };
    if (record.qos > 0 && delivery.possiblySent) options.dup = true;
    const properties = decodeProperties(record.properties);
    if (properties) options.properties = properties;
    this.connection.publish(record.topic, record.payload, options, (error, reasonCode) => {
      if (!error) {
        const ackedAt = Date.now();
        if (this.policy?.holdAfterBrokerAck(delivery, ackedAt)) this.outbox.awaitReceipt(record.seq);
        else {
          void this.outbox.acknowledge(record.seq);
          this.emit('delivered', delivery, ackedAt, reasonCode);
        }
      } else if (error instanceof ConnectionError && error.returnCode !== undefined) {
        void this.outbox.acknowledge(record.seq);
        this.emit('refused', delivery, error);
      } else {
        // Not connected, or the connection closed under it: it goes again after reconnecting. A connection
        // that still says it is up gets it again a moment later: a send that fails at once must not make
        // a loop that holds the process.
        this.outbox.release(record.seq);
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, RETRY_AFTER_FAILURE);
        return;
      }
      this.kick();
    });
  }
}
