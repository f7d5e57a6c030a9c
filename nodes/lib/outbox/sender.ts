import { EventEmitter } from 'node:events';
import type { IClientPublishOptions } from 'mqtt';
import { ConnectionError, type BrokerConnection } from '../connection.js';
import type { Delivery, Outbox } from './outbox.js';
import { decodeProperties } from './properties.js';

export interface SenderEvents<Tag> {
  /** The broker acknowledged it (QoS 1/2) or it was written (QoS 0); it has left the outbox. */
  delivered: [delivery: Delivery<Tag>, ackedAt: number, reasonCode: number | undefined];
  /** The broker refused this message for good (an MQTT 5 reason code ≥ 0x80); it has left the outbox. */
  refused: [delivery: Delivery<Tag>, error: ConnectionError];
}

/** In-flight window when the broker sets no lower Receive Maximum. */
export const DEFAULT_WINDOW = 20;

/** Milliseconds `stop()` waits for in-flight messages to be acknowledged. */
const STOP_GRACE = 2000;

/**
 * Drains an outbox through a connection, oldest first, with at most `window`
 * messages in flight, so a backlog never floods the broker after an outage.
 * A message the connection could not take goes back to the outbox and is sent
 * again when the connection returns.
 */
export class OutboxSender<Tag = unknown> extends EventEmitter<SenderEvents<Tag>> {
  private draining = false;
  private drainAgain = false;
  private stopped = false;
  private readonly onStatus = () => this.kick();
  private readonly onReady = () => this.kick();

  constructor(
    private readonly outbox: Outbox<Tag>,
    private readonly connection: BrokerConnection,
    private readonly maxWindow = DEFAULT_WINDOW,
  ) {
    super();
    connection.on('status', this.onStatus);
    outbox.on('ready', this.onReady);
  }

  /** The window in force: ours, or the broker's Receive Maximum when lower. */
  get window(): number {
    return Math.min(this.maxWindow, this.connection.receiveMaximum ?? this.maxWindow);
  }

  /** Sends what the window allows; safe to call at any time. */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    void this.drain();
  }

  /** Stops sending and waits a moment for the messages in flight; the rest stay in the outbox. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.connection.off('status', this.onStatus);
    this.outbox.off('ready', this.onReady);
    const deadline = Date.now() + STOP_GRACE;
    while (this.outbox.inFlightCount > 0 && this.connection.connected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async drain(): Promise<void> {
    try {
      do {
        this.drainAgain = false;
        while (!this.stopped && this.connection.connected && this.outbox.inFlightCount < this.window) {
          const deliveries = await this.outbox.take(this.window - this.outbox.inFlightCount);
          if (deliveries.length === 0) break;
          for (const delivery of deliveries) this.send(delivery);
        }
      } while (this.drainAgain && !this.stopped);
    } finally {
      // Cleared in the same synchronous step as the last check of drainAgain: a kick() that comes
      // later starts a new drain. (Cleared a microtask later, as a .finally() would, a kick in
      // between was lost and the outbox stalled until the next event.)
      this.draining = false;
    }
  }

  private send(delivery: Delivery<Tag>) {
    const { record } = delivery;
    const options: IClientPublishOptions = { qos: record.qos, retain: record.retain };
    if (record.qos > 0 && delivery.possiblySent) options.dup = true;
    const properties = decodeProperties(record.properties);
    if (properties) options.properties = properties;
    this.connection.publish(record.topic, record.payload, options, (error, reasonCode) => {
      if (!error) {
        void this.outbox.acknowledge(record.seq);
        this.emit('delivered', delivery, Date.now(), reasonCode);
      } else if (error instanceof ConnectionError && error.returnCode !== undefined) {
        void this.outbox.acknowledge(record.seq);
        this.emit('refused', delivery, error);
      } else {
        // Not connected, or the connection closed under it: it goes again after reconnecting.
        this.outbox.release(record.seq);
      }
      this.kick();
    });
  }
}
