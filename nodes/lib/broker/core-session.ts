import { EventEmitter } from 'node:events';
import type { QoS } from 'mqtt-packet';
import type { Identity } from './acl.js';
import type { PublishAccess } from './packet-gate.js';
import { parseSharedFilter } from '../topic.js';

/** A message as the broker hands it around: what a core session publishes and what it is given. */
export interface BrokerMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
}

/** A message handler at the broker; `done` tells the broker it has been taken. */
export type BrokerHandler = (message: BrokerMessage, done: () => void) => void;

/**
 * The broker's own publish and subscribe, under the clients' sessions: what the
 * embedded broker does with a message once a client's PUBLISH has been read, and
 * where its client sessions subscribe.
 */
export interface BrokerCore {
  /** Stores it if retained, queues it for offline persistent sessions (QoS 1/2), hands it to every subscription; then `done`. */
  publish(message: BrokerMessage, done: (error?: Error | null) => void): void;
  /** A `$share/group/filter` makes the handler a member of the group, which gets one copy of each message. */
  subscribe(filter: string, handler: BrokerHandler, done: (error?: Error | null) => void): void;
  unsubscribe(filter: string, handler: BrokerHandler): void;
  /** The retained messages matching `filter`. */
  retained(filter: string): AsyncIterable<BrokerMessage>;
}

/** The access rules a core session is held to, as a network client is. */
export interface CoreSessionAccess extends PublishAccess {
  maySubscribe(identity: Identity, filter: string): boolean;
  /** Whether a topic a denial covers may reach the identity through a subscription it was allowed. */
  mayReceive(identity: Identity, topic: string): boolean;
  /** Whether some subscribe list denies, so deliveries are checked (mayReceive). */
  readonly checksDeliveries: boolean;
}

export interface CoreSessionEvents {
  /** The broker stopped: nothing goes through any more. */
  close: [];
  /** A publication the rules refuse, dropped as the broker drops a network client's (MQTT 3.1.1 has no refusal). */
  'publish-refused': [identity: Identity, topic: string];
  'subscribe-refused': [identity: Identity, filter: string];
}

/**
 * Called for each message delivered to the session, once however many of its filters match, with the
 * QoS it was published at: the receiver grants the highest QoS among its filters that match.
 */
export type CoreSessionReceiver = (topic: string, payload: Buffer, qos: QoS, retain: boolean) => void;

/**
 * A clean-session client of the embedded broker that lives in the same process:
 * it publishes and subscribes at the broker's core, with no MQTT packets, no
 * stream and no client library in between. A clean session keeps nothing at the
 * broker and an in-process connection is only ever lost with the broker itself,
 * so what a session would add (message ids, acknowledgments, redelivery) has
 * nothing to protect here; the access rules still apply, as to any client.
 *
 * Each message is handed over as the broker publishes it: a publish callback
 * runs once every subscription (and every offline persistent session) has it.
 */
export class CoreSession extends EventEmitter<CoreSessionEvents> {
  private open = true;
  private readonly handlers = new Map<string, BrokerHandler>();
  /** The QoS each filter was asked with, for the editor's monitor. */
  private readonly askedQos = new Map<string, QoS>();
  /** The message last passed on: the broker hands one message to each matching filter, the receiver takes it once. */
  private lastDelivered: BrokerMessage | undefined;
  receiver: CoreSessionReceiver = () => {};
  /** A broker's rules are fixed while it runs, and a session lives no longer than its broker. */
  private readonly publishesFreely: boolean;

  constructor(
    private readonly core: BrokerCore,
    readonly identity: Identity,
    private readonly access: CoreSessionAccess,
  ) {
    super();
    this.publishesFreely = access.publishesFreely(identity);
  }

  get closed(): boolean {
    return !this.open;
  }

  /** `callback` gets an error when the session is closed or the broker could not take the message. */
  publish(message: BrokerMessage, callback: (error?: Error | null) => void): void {
    if (!this.open) return callback(new Error('embedded broker stopped'));
    const { topic } = message;
    const reserved = topic.startsWith('$SYS/');
    if (reserved || (!this.publishesFreely && !this.access.mayPublish(this.identity, topic))) {
      this.emit('publish-refused', this.identity, topic);
      return callback();
    }
    this.core.publish(message, callback);
  }

  /** Resolves false when the rules refuse the filter (a SUBACK 0x80 on the network). */
  async subscribe(filter: string, qos: QoS): Promise<boolean> {
    if (!this.open) return true;
    if (!this.access.maySubscribe(this.identity, filter)) {
      this.emit('subscribe-refused', this.identity, filter);
      return false;
    }
    this.askedQos.set(filter, qos);
    let handler = this.handlers.get(filter);
    if (!handler) {
      const added = this.handlerFor();
      this.handlers.set(filter, added);
      handler = added;
      await new Promise<void>((resolve, reject) =>
        this.core.subscribe(filter, added, (error) => (error ? reject(error) : resolve())),
      );
    }
    // As on the network, every SUBSCRIBE brings the retained messages it matches; a shared one brings none
    // (MQTT 5 section 4.8.2).
    if (parseSharedFilter(filter)?.group !== undefined) return true;
    for await (const message of this.core.retained(filter)) {
      if (!this.open || this.handlers.get(filter) !== handler) break;
      if (!this.mayReceive(message.topic)) continue;
      this.receiver(message.topic, message.payload, Math.min(message.qos, qos) as QoS, true);
    }
    return true;
  }

  unsubscribe(filter: string): void {
    const handler = this.handlers.get(filter);
    if (!handler) return;
    this.handlers.delete(filter);
    this.askedQos.delete(filter);
    this.core.unsubscribe(filter, handler);
  }

  /** Its filters, with the QoS each was asked with. */
  subscriptions(): { filter: string; qos: QoS }[] {
    return [...this.askedQos].map(([filter, qos]) => ({ filter, qos }));
  }

  /** Leaves the broker: every subscription goes, as a clean session's does. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    for (const [filter, handler] of this.handlers) this.core.unsubscribe(filter, handler);
    this.handlers.clear();
    this.askedQos.clear();
    this.lastDelivered = undefined;
    this.emit('close');
  }

  /** What a network client's authorizeForward says (aedes/access-hooks.ts): asked only when a list denies. */
  private mayReceive(topic: string): boolean {
    return !this.access.checksDeliveries || this.access.mayReceive(this.identity, topic);
  }

  /** The receiver matches topics again with MQTT's rules ($ topics and leading wildcards included). */
  private handlerFor(): BrokerHandler {
    return (message, done) => {
      done();
      if (!this.open || message === this.lastDelivered) return;
      this.lastDelivered = message;
      if (!this.mayReceive(message.topic)) return;
      this.receiver(message.topic, message.payload, message.qos, false);
    };
  }
}
