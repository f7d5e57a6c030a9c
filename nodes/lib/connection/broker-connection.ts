import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import mqtt, { MqttClient, type IClientOptions, type ClientSubscribeCallback } from 'mqtt';
import { parseSharedFilter } from '../topic.js';
import { SubscriptionTable } from './subscription-table.js';
import { embeddedBrokerMissing, embeddedBrokers } from '../broker/registry.js';
import { createDuplexPair } from '../duplex-pair.js';
import { ParkedSubscription } from './parked-subscription.js';
import { nextReconnectDelay } from './backoff.js';
import type { CoreSession } from '../broker/core-session.js';
import {
  ConnectionError,
  type ConnectionEvents,
  type ConnectionOptions,
  type ConnectionState,
  type ConnectionStatus,
  type DisconnectReason,
  type IClientPublishOptions,
  type IConnackPacket,
  type IPublishPacket,
  type PublishCallback,
  type PublishingConnection,
  type QoS,
  type SubscribeFailure,
  type Subscriber,
} from './types.js';

/**
 * Config nodes start before flow nodes, so an embedded broker usually registers
 * a moment after its connection asks for it: only after this many milliseconds is it reported missing.
 */
const EMBEDDED_START_GRACE = 2000;

/** Whether `promise` settled within `ms` milliseconds. */
async function withTimeout(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Milliseconds `close()` waits for the close message and DISCONNECT before dropping the socket. */
const GRACEFUL_CLOSE_TIMEOUT = 3000;

/**
 * One MQTT client shared by every node of a broker config: connects on first
 * use, reconnects with backoff, subscribes each filter once at the broker and
 * dispatches each incoming message once through a topic tree.
 */
export class BrokerConnection extends EventEmitter<ConnectionEvents> implements PublishingConnection {
  private client: MqttClient | undefined;
  /**
   * A clean session to an embedded broker goes through its core, not MQTT: there is no session
   * state for packets to protect, and in-process packets cost most of a message's time.
   */
  private readonly overLink: boolean;
  private link: CoreSession | undefined;
  private state: ConnectionState = 'idle';
  private lastReason: DisconnectReason | undefined;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Whether the client has made its first connection attempt (MQTT.js wants connect() once, reconnect() after). */
  private attempted = false;
  private readonly table = new SubscriptionTable();
  private readonly users = new Set<object>();
  private readonly onEmbeddedAvailable = (id: string) => {
    const { endpoint } = this.options;
    if (endpoint.transport === 'embedded' && endpoint.brokerId === id && this.reconnectTimer)
      this.reconnectNow();
  };

  constructor(readonly options: ConnectionOptions) {
    super();
    this.setMaxListeners(0);
    this.overLink = options.endpoint.transport === 'embedded' && options.cleanSession;
  }

  get status(): ConnectionStatus {
    return { state: this.state, reason: this.lastReason };
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** MQTT 5 reason codes of PUBACK/PUBREC packets not yet matched to their publish callback, by message id. */
  private readonly ackReasons = new Map<number, number>();

  /** How many QoS 1/2 messages the broker accepts in flight (MQTT 5 Receive Maximum), or undefined. */
  get receiveMaximum(): number | undefined {
    return this.serverProperties?.receiveMaximum;
  }

  /** The broker's CONNACK properties (MQTT 5), e.g. Receive Maximum. */
  get serverProperties(): IConnackPacket['properties'] | undefined {
    return (this.client as unknown as { _serverProperties?: IConnackPacket['properties'] })
      ?._serverProperties;
  }

  /** A node starts using the connection; the first one opens it. */
  register(user: object): void {
    this.users.add(user);
    if (this.state === 'idle') this.open();
  }

  /** A node stops using it; the last one out closes it. */
  async deregister(user: object): Promise<void> {
    this.users.delete(user);
    if (this.users.size === 0 && this.state !== 'idle' && this.state !== 'closed') {
      await this.close();
      this.state = 'idle';
    }
  }

  get userCount(): number {
    return this.users.size;
  }

  /** Adds a subscription for `subscriber`; the broker is asked only when the filter is new or needs a higher QoS. */
  /**
   * `durable` subscriptions stay at the broker when a persistent session's
   * connection closes; the others are unsubscribed first, so none is orphaned.
   */
  subscribe(filter: string, qos: QoS, subscriber: Subscriber, durable = false): void {
    const parked = this.parked.get(filter);
    if (parked) this.unpark(parked);
    if (!this.table.has(filter)) {
      const overlapping = this.options.protocolVersion === 4 ? this.table.sharedOverlap(filter) : undefined;
      if (overlapping) this.emit('shared-overlap', filter, overlapping);
      if (this.options.endpoint.transport === 'embedded' && parseSharedFilter(filter)?.group !== undefined)
        this.emit('shared-unsupported', filter);
    }
    this.table.add(filter, qos, subscriber, durable);
    if (this.connected) this.sendSubscriptions([filter]);
    parked?.handOver(subscriber);
  }

  /**
   * Removes a subscription; the broker is told only when no subscriber is left
   * and `keepAtBroker` is false (a persistent session keeps it across redeploys).
   */
  unsubscribe(filter: string, subscriber: Subscriber, keepAtBroker = false): void {
    const left = this.table.remove(filter, subscriber);
    if (!left) return;
    if (keepAtBroker && !this.parked.has(filter)) {
      // The broker keeps delivering to this subscription: hold what comes until the node is back.
      const parked = new ParkedSubscription(filter, (expired) => this.giveUp(expired));
      this.subscribe(filter, left.qos, parked, true);
      this.parked.set(filter, parked);
      return;
    }
    this.table.deleteFilter(filter);
    if (this.connected && !keepAtBroker && left.brokerQos !== undefined) {
      this.link?.unsubscribe(filter);
      this.client?.unsubscribe(filter);
    }
  }

  /** Subscriptions kept at the broker for an in node being redeployed, by filter. */
  private readonly parked = new Map<string, ParkedSubscription>();

  private unpark(parked: ParkedSubscription) {
    this.parked.delete(parked.filter);
    this.table.remove(parked.filter, parked);
  }

  /** No in node took the subscription back (its topic changed): it leaves the broker too. */
  private giveUp(parked: ParkedSubscription) {
    if (this.parked.get(parked.filter) !== parked) return;
    this.parked.delete(parked.filter);
    this.unsubscribe(parked.filter, parked);
    this.emit('subscription-given-up', parked.filter, parked.release());
  }

  /** Every subscription of `subscriber`, removed. */
  unsubscribeAll(subscriber: Subscriber, keepAtBroker = false): void {
    for (const filter of this.table.filtersOf(subscriber)) this.unsubscribe(filter, subscriber, keepAtBroker);
  }

  subscriptionsOf(subscriber: Subscriber): { topic: string; qos: QoS }[] {
    return this.table.subscriptionsOf(subscriber);
  }

  /** Filters subscribed at the broker in this session, with their QoS (for tests and diagnostics). */
  brokerSubscriptions(): Map<string, QoS> {
    return this.table.brokerSubscriptions();
  }

  /**
   * Publishes now or fails now: `callback` runs after the write (QoS 0) or the
   * broker's acknowledgment (QoS 1/2), or with a ConnectionError when not connected.
   */
  publish(
    topic: string,
    payload: Buffer | string,
    options: IClientPublishOptions,
    callback: PublishCallback,
  ): void {
    if (this.link) return this.publishOverLink(this.link, topic, payload, options, callback);
    if (!this.connected || !this.client) {
      callback(new ConnectionError('not-connected', 'not connected to the broker'));
      return;
    }
    this.client.publish(topic, payload, options, (error, packet) => {
      const messageId = (packet as { messageId?: number } | undefined)?.messageId;
      const reasonCode = messageId === undefined ? undefined : this.ackReasons.get(messageId);
      if (messageId !== undefined) this.ackReasons.delete(messageId);
      if (!error) return callback(undefined, reasonCode);
      const returnCode = (error as { code?: unknown }).code;
      callback(
        new ConnectionError(
          this.state === 'closed' ? 'closed' : 'publish-failed',
          error.message,
          typeof returnCode === 'number' ? returnCode : undefined,
        ),
      );
    });
  }

  private publishOverLink(
    link: CoreSession,
    topic: string,
    payload: Buffer | string,
    options: IClientPublishOptions,
    callback: (error?: Error) => void,
  ): void {
    if (!this.connected) {
      callback(new ConnectionError('not-connected', 'not connected to the broker'));
      return;
    }
    const message = {
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
    };
    link.publish(message, (error) => {
      if (!error) return callback();
      const code = link.closed ? (this.state === 'closed' ? 'closed' : 'not-connected') : 'publish-failed';
      callback(new ConnectionError(code, error.message));
    });
  }

  /** Sends the close message and DISCONNECT when connected, then drops the socket; pending callbacks fail. */
  async close(): Promise<void> {
    this.clearReconnectTimer();
    // Unacknowledged, what they hold comes again in the next session.
    for (const parked of this.parked.values()) parked.release();
    this.parked.clear();
    embeddedBrokers.off('available', this.onEmbeddedAvailable);
    const client = this.client;
    const wasConnected = this.connected;
    const link = this.link;
    const closeMessage = this.options.close;
    if (link && wasConnected && closeMessage) {
      // Taken by the broker in the same turn, whether or not it is stopping too.
      this.publishOverLink(link, closeMessage.topic, closeMessage.payload, closeMessage, () => {});
    }
    this.setState('closed');
    this.client = undefined;
    this.link = undefined;
    link?.close();
    if (!client) return;
    // The broker may be closing in the same deploy (an embedded broker): a stream that is gone
    // will not emit 'close' again, and a QoS 1/2 close message would wait for an ack that never comes.
    const stream = client.stream as (Duplex & { closed?: boolean }) | undefined;
    const streamOpen = () => wasConnected && stream !== undefined && !stream.destroyed && !stream.closed;
    if (streamOpen() && !this.options.cleanSession) {
      // Nodes may close after their config node: drop what the session must not keep now, before DISCONNECT.
      for (const filter of this.table.nonDurableAtBroker()) client.unsubscribe(filter);
    }
    // Each wait below also ends when the connection closes under it.
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    if (streamOpen() && closeMessage) {
      const published = new Promise<void>((resolve) =>
        client.publish(closeMessage.topic, closeMessage.payload, closeMessage, () => resolve()),
      );
      await withTimeout(Promise.race([published, closed]), GRACEFUL_CLOSE_TIMEOUT);
    }
    if (!streamOpen()) {
      // MQTT.js throws when ending a client that never had a stream (no embedded broker to reach).
      if (stream) client.end(true);
      return;
    }
    const ended = new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    if (!(await withTimeout(Promise.race([ended, closed]), GRACEFUL_CLOSE_TIMEOUT))) client.end(true);
  }

  private open() {
    embeddedBrokers.on('available', this.onEmbeddedAvailable);
    const { endpoint } = this.options;
    if (!this.overLink) this.createClient();
    const brokerId = endpoint.transport === 'embedded' ? endpoint.brokerId : undefined;
    if (brokerId !== undefined && !embeddedBrokers.get(brokerId)) {
      this.setState('connecting');
      // Wait for the broker's 'available' event; report it missing only after the grace period.
      this.reconnectTimer = setTimeout(() => {
        this.lastReason = { code: 'embedded-missing', message: 'embedded broker is not running' };
        this.reconnectTimer = setTimeout(
          () => this.reconnectNow(),
          nextReconnectDelay(this.reconnectAttempt++, this.options.backoff),
        );
        this.setState('disconnected');
      }, EMBEDDED_START_GRACE);
      return;
    }
    this.reconnectNow();
  }

  private createClient() {
    const options = this.clientOptions();
    const { endpoint } = this.options;
    const client =
      endpoint.transport === 'embedded'
        ? new MqttClient(() => this.openEmbeddedStream(endpoint.brokerId) as never, options)
        : mqtt.connect(options);
    this.client = client;
    this.attempted = false;
    client.on('connect', (connack) => this.onConnect(client, connack));
    client.on('message', (topic, payload, packet) => {
      if (packet.qos === 2 && this.earlyQos2.delete(packet.messageId as number)) return;
      this.dispatch(topic, payload, packet);
    });
    client.on('packetreceive', (packet) => {
      // As MQTT.js does with its own QoS 2 state: a new session reuses message ids.
      if (packet.cmd === 'connack' && !packet.sessionPresent) this.earlyQos2.clear();
      else if (packet.cmd === 'publish' && packet.qos === 2) this.dispatchQos2Early(packet);
    });
    this.holdPubrecs(client);
    client.handleMessage = (packet, callback) =>
      this.handleMessage(client, packet as IPublishPacket, callback);
    if (this.options.protocolVersion === 5) {
      // MQTT.js hands a publish callback its own packet, not the acknowledgment: keep the reason code aside.
      client.on('packetreceive', (packet) => {
        if (
          (packet.cmd === 'puback' || packet.cmd === 'pubrec') &&
          packet.messageId !== undefined &&
          packet.reasonCode
        ) {
          this.ackReasons.set(packet.messageId, packet.reasonCode);
        }
      });
    }
    client.on('error', (error) => this.onError(error));
    client.on('close', () => this.onClose(client));
  }

  /** Opens a link to the embedded broker's core; a refusal or a missing broker is retried as a lost connection is. */
  private connectLink(brokerId: string) {
    const broker = embeddedBrokers.get(brokerId);
    const { clientId, username, password } = this.options;
    const opening = broker
      ? broker.openCoreSession({ clientId, username, password })
      : Promise.reject(embeddedBrokerMissing());
    opening.then(
      (link) => {
        if (this.state !== 'connecting') return link.close();
        this.link = link;
        link.receiver = (topic, payload, qos, retain) =>
          this.table.dispatchFromCoreSession(topic, payload, qos, retain);
        link.once('close', () => this.onLinkClosed(link));
        // A link is a clean session: the broker holds none of the subscriptions.
        this.sessionStarted(false);
      },
      (error: Error) => {
        if (this.state !== 'connecting') return;
        this.onError(error);
        this.retryLater();
      },
    );
  }

  private onLinkClosed(link: CoreSession) {
    if (link !== this.link) return;
    this.link = undefined;
    this.lastReason = { code: 'embedded-missing', message: 'embedded broker stopped' };
    this.retryLater();
  }

  private clientOptions(): IClientOptions {
    const o = this.options;
    const options: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepalive,
      clean: o.cleanSession,
      // Reconnection is ours: backoff with jitter, and stores kept across attempts.
      reconnectPeriod: 0,
      resubscribe: false,
      connectTimeout: o.connectTimeout ?? 30_000,
      manualConnect: true,
    };
    // MQTT.js calls its debug logger several times per packet, a few percent of the time per message even
    // when disabled: it is kept only when DEBUG asks for it.
    if (!/mqttjs/.test(process.env.DEBUG ?? '')) options.log = () => {};
    if (o.endpoint.transport !== 'embedded') {
      options.protocol = o.endpoint.transport;
      options.host = o.endpoint.host;
      options.port = o.endpoint.port;
      if (o.endpoint.path) options.path = o.endpoint.path;
    }
    if (o.username) options.username = o.username;
    if (o.password) options.password = o.password;
    if (o.protocolVersion === 5 && !o.cleanSession && o.sessionExpiryInterval) {
      options.properties = { sessionExpiryInterval: o.sessionExpiryInterval };
    }
    if (o.will) options.will = { ...o.will, payload: Buffer.from(o.will.payload) };
    if (o.tls)
      Object.assign(options, o.tls, o.tls.alpnProtocol ? { ALPNProtocols: [o.tls.alpnProtocol] } : {});
    else options.rejectUnauthorized = true;
    return options;
  }

  private openEmbeddedStream(brokerId: string): Duplex {
    const broker = embeddedBrokers.get(brokerId);
    if (broker) {
      try {
        return broker.connectInProcess();
      } catch {
        // Falls through: the broker is shutting down.
      }
    }
    const [stream] = createDuplexPair();
    process.nextTick(() => stream.destroy(embeddedBrokerMissing()));
    return stream;
  }

  private onConnect(client: MqttClient, connack: IConnackPacket) {
    // Nagle's algorithm would hold small packets back for up to 40 ms.
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    this.sessionStarted(connack.sessionPresent);
  }

  /** Connected, over MQTT or a link: subscriptions the broker does not hold go (again), then the birth message. */
  private sessionStarted(sessionPresent: boolean) {
    this.reconnectAttempt = 0;
    this.lastReason = undefined;
    if (!sessionPresent) this.table.brokerSessionLost();
    // Subscriptions first: what the 'connected' status sets going (an outbox draining) then reaches this
    // config's own in nodes too, on the network (SUBSCRIBE is ahead on the wire) as over a link.
    this.sendSubscriptions(this.table.allFilters());
    this.setState('connected');
    const birth = this.options.birth;
    if (birth) this.publish(birth.topic, birth.payload, birth, () => {});
  }

  /**
   * Subscribes the filters whose QoS at the broker is not the one wanted: in one
   * SUBSCRIBE packet on MQTT 3.1.1; on MQTT 5 one packet per filter, since a
   * packet carries one Subscription Identifier.
   */
  private sendSubscriptions(filters: string[]) {
    if (this.link) return this.subscribeOverLink(this.link, filters);
    const client = this.client;
    if (!client) return;
    const wanted: Record<string, { qos: QoS }> = {};
    // On a refusal MQTT.js passes the request list; the return codes are only in the SUBACK packet.
    const onGranted: ClientSubscribeCallback = (error, requested, suback) => {
      if (error && !suback) return; // the connection dropped: on reconnect the filters go again
      suback?.granted.forEach((code, i) => {
        const filter = requested?.[i]?.topic;
        // SUBACK codes are numbers; mqtt-packet types them loosely.
        if (typeof code === 'number' && code >= 128 && filter !== undefined)
          this.onSubscribeRefused(filter, code);
      });
    };
    for (const filter of filters) {
      const entry = this.table.requestAtBroker(filter);
      if (!entry) continue;
      if (this.options.protocolVersion === 5) {
        client.subscribe(
          filter,
          { qos: entry.qos, properties: { subscriptionIdentifier: entry.subscriptionId } },
          onGranted,
        );
      } else {
        wanted[filter] = { qos: entry.qos };
      }
    }
    if (Object.keys(wanted).length > 0) client.subscribe(wanted, onGranted);
  }

  private subscribeOverLink(link: CoreSession, filters: string[]) {
    for (const filter of filters) {
      const entry = this.table.requestAtBroker(filter);
      if (!entry) continue;
      link.subscribe(filter, entry.qos).then(
        (granted) => {
          if (!granted && link === this.link) this.onSubscribeRefused(filter, 0x80);
        },
        // The broker could not take the filter (too many levels): refused, as its SUBACK would say.
        () => {
          if (link === this.link) this.onSubscribeRefused(filter, 0x80);
        },
      );
    }
  }

  private onSubscribeRefused(filter: string, returnCode: number) {
    const subscribers = this.table.refused(filter);
    const failure: SubscribeFailure = { filter, returnCode };
    this.emit('subscribe-failure', failure);
    for (const subscriber of subscribers) subscriber.onSubscribeFailure(failure);
  }

  /**
   * QoS 2 messages passed on at PUBLISH, by id, with what holds their PUBREC; they are
   * not passed on again at PUBREL. Session state: cleared when the broker has none.
   */
  private readonly earlyQos2 = new Map<number, Promise<unknown> | undefined>();
  /** PUBRECs held until the flow completes, by message id. */
  private readonly heldPubrecs = new Map<number, Promise<unknown>>();

  private dispatchQos2Early(packet: IPublishPacket) {
    const messageId = packet.messageId as number;
    if (this.earlyQos2.has(messageId)) {
      // Sent again by the broker (after a reconnect) before PUBREL: passed on already, its PUBREC still waits.
      const hold = this.earlyQos2.get(messageId);
      if (hold) this.heldPubrecs.set(messageId, hold);
      return;
    }
    if (!this.table.matchesHolder(packet.topic)) return;
    // Every subscriber gets it now: one PUBREC answers for the connection, and a holder delays it.
    const holds = this.table.dispatch(packet.topic, packet.payload as Buffer, packet);
    const hold = holds ? Promise.allSettled(holds) : undefined;
    this.earlyQos2.set(messageId, hold);
    if (hold) this.heldPubrecs.set(messageId, hold);
  }

  /**
   * MQTT.js sends a PUBREC as soon as it has stored a QoS 2 message and reads no
   * further packet until it is written. A held one is reported written at once
   * (the reader goes on) and goes out when the flow completes, if the connection
   * it answers is still the current one; otherwise the broker sends the PUBLISH again.
   */
  private holdPubrecs(client: MqttClient) {
    type SendPacket = (
      packet: { cmd: string; messageId?: number },
      callback?: () => void,
      ...rest: unknown[]
    ) => void;
    const internals = client as unknown as { _sendPacket: SendPacket };
    const send = internals._sendPacket.bind(client);
    internals._sendPacket = (packet, callback, ...rest) => {
      const held = packet.cmd === 'pubrec' ? this.heldPubrecs.get(packet.messageId as number) : undefined;
      if (!held) return send(packet, callback, ...rest);
      this.heldPubrecs.delete(packet.messageId as number);
      const stream = client.stream;
      callback?.();
      void held.then(() => {
        if (client.stream === stream && client.connected) send(packet);
      });
    };
  }

  /** Hands a PUBLISH to its subscribers; what they hold its acknowledgment with is kept for handleMessage. */
  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket) {
    const holds = this.table.dispatch(topic, payload, packet);
    if (holds) this.heldAcks.set(packet, holds);
  }

  /** Acknowledgments held by subscribers, by the packet they are for. */
  private readonly heldAcks = new WeakMap<IPublishPacket, Promise<void>[]>();

  /**
   * MQTT.js acknowledges a message when handleMessage calls back, and reads no
   * further packet until then. A held message calls back at once without an
   * acknowledgment (the reader goes on: keep-alive answers still arrive), and
   * its PUBACK is sent when every hold has settled, if the connection it came
   * on is still the current one; otherwise the broker redelivers it.
   */
  private handleMessage(client: MqttClient, packet: IPublishPacket, callback: (error?: Error) => void) {
    const holds = this.heldAcks.get(packet);
    this.heldAcks.delete(packet);
    // At QoS 2 this comes at PUBREL: the broker has let go already, and PUBCOMP is no acknowledgment to hold.
    if (!holds || packet.qos !== 1) return callback();
    const stream = client.stream;
    callback(new Error('acknowledgment held until the flow completes'));
    void Promise.allSettled(holds).then(() => {
      if (client.stream !== stream || !client.connected) return;
      const puback = { cmd: 'puback' as const, messageId: packet.messageId, reasonCode: 0 };
      // MQTT.js has no public way to send an acknowledgment later.
      (client as unknown as { _sendPacket(packet: object): void })._sendPacket(puback);
    });
  }

  private onError(error: Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') {
      this.lastReason = { code: 'refused', message: error.message, returnCode: code };
    } else if (code === 'EMBEDDED_MISSING') {
      this.lastReason = { code: 'embedded-missing', message: error.message };
    } else {
      this.lastReason = { code: 'network', message: error.message };
    }
  }

  private onClose(client: MqttClient) {
    if (client !== this.client || this.state === 'closed') return;
    this.lastReason ??= { code: 'lost', message: 'connection lost' };
    this.retryLater();
  }

  private retryLater() {
    if (this.state === 'closed') return;
    const delay = nextReconnectDelay(this.reconnectAttempt++, this.options.backoff);
    this.setState('disconnected', delay);
    this.reconnectTimer = setTimeout(() => this.reconnectNow(), delay);
  }

  private reconnectNow() {
    this.clearReconnectTimer();
    const { endpoint } = this.options;
    if (this.overLink && endpoint.transport === 'embedded' && this.state !== 'closed') {
      this.lastReason = undefined;
      this.setState('connecting');
      this.connectLink(endpoint.brokerId);
      return;
    }
    const client = this.client;
    if (!client || this.state === 'closed') return;
    this.lastReason = undefined;
    this.setState('connecting');
    if (!this.attempted) {
      this.attempted = true;
      client.connect();
      return;
    }
    // Passing the stores keeps unacknowledged QoS 1/2 messages, resent after CONNACK.
    client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore } as never);
  }

  private clearReconnectTimer() {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private setState(state: ConnectionState, retryIn?: number) {
    this.state = state;
    const status: ConnectionStatus = { state, reason: this.lastReason };
    if (retryIn !== undefined) status.retryIn = retryIn;
    this.emit('status', status);
  }
}
