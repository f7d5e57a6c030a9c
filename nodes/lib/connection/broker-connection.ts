import { EventEmitter } from 'node:events';
import { nextReconnectDelay } from './backoff.js';
import {
  CoreSessionTransport,
  embeddedBrokerRunning,
  openInProcessStream,
  throughBrokerCore,
  watchEmbeddedBrokers,
} from './in-process-transport.js';
import { MqttjsTransport } from './mqttjs-transport.js';
import { ParkedSubscription } from './parked-subscription.js';
import { SubscriptionTable, type HeldSubscription } from './subscription-table.js';
import { acceptsSubscriptionIdentifiers, type Transport, type TransportHost } from './transport.js';
import {
  ConnectionError,
  type ConnectionEvents,
  type ConnectionOptions,
  type ConnectionState,
  type ConnectionStatus,
  type DisconnectReason,
  type IClientPublishOptions,
  type PublishCallback,
  type PublishingConnection,
  type QoS,
  type SubscribeFailure,
  type Subscriber,
  type SubscriptionOptions,
} from './types.js';

/**
 * Config nodes start before flow nodes, so an embedded broker usually registers
 * a moment after its connection asks for it: only after this many milliseconds is it reported missing.
 */
const EMBEDDED_START_GRACE = 2000;

/**
 * One connection to a broker shared by every node of a broker config: connects on
 * first use (or on connect(), without autoConnect), reconnects with backoff, subscribes
 * each filter once at the broker (see SubscriptionTable) and dispatches each incoming
 * message once. Its transport carries the packets: MQTT.js, or a core session of an
 * embedded broker for a clean session (see in-process-transport.ts).
 */
export class BrokerConnection
  extends EventEmitter<ConnectionEvents>
  implements PublishingConnection, TransportHost
{
  /** Chosen by the endpoint and the session; made anew when reconfigure() changes them. */
  private transport: Transport;
  private currentOptions: ConnectionOptions;
  private connectionState: ConnectionState = 'idle';
  private lastReason: DisconnectReason | undefined;
  /** For the editor's monitor, kept as things happen (a field each): see `history`. */
  private stateSince = Date.now();
  private reconnectCount = 0;
  private lastErrorText: string | undefined;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly table = new SubscriptionTable();
  /** Subscriptions kept at the broker for an in node being redeployed, by filter. */
  private readonly parked = new Map<string, ParkedSubscription>();
  private readonly users = new Set<object>();
  /** Stops watching for the embedded broker to start; set while open on an embedded endpoint. */
  private unwatchEmbeddedBrokers: (() => void) | undefined;

  constructor(options: ConnectionOptions) {
    super();
    this.setMaxListeners(0);
    this.currentOptions = options;
    this.transport = this.createTransport(options);
  }

  /** The settings in force: the config's, or the last ones reconfigure() set. */
  get options(): ConnectionOptions {
    return this.currentOptions;
  }

  private createTransport(options: ConnectionOptions): Transport {
    const { endpoint } = options;
    if (endpoint.transport !== 'embedded') return new MqttjsTransport(options, this.table, this);
    if (throughBrokerCore(options))
      return new CoreSessionTransport(endpoint.brokerId, options, this.table, this);
    const openStream = () => openInProcessStream(endpoint.brokerId);
    return new MqttjsTransport(options, this.table, this, openStream);
  }

  get state(): ConnectionState {
    return this.connectionState;
  }

  get status(): ConnectionStatus {
    return { state: this.connectionState, reason: this.lastReason };
  }

  /** When it entered its state, how many times it tried again after a failure or a loss, its last error. */
  get history(): { since: number; reconnects: number; lastError: string | undefined } {
    return { since: this.stateSince, reconnects: this.reconnectCount, lastError: this.lastErrorText };
  }

  get connected(): boolean {
    return this.connectionState === 'connected';
  }

  /**
   * Whether each message names the subscriptions it is for: on MQTT 5, unless the broker says it has
   * no Subscription Identifiers (known from its CONNACK on; until then, assumed).
   */
  private get identifiesSubscriptions(): boolean {
    return (
      this.options.protocolVersion === 5 && acceptsSubscriptionIdentifiers(this.transport.serverProperties)
    );
  }

  /** How many QoS 1/2 messages the broker accepts in flight (MQTT 5 Receive Maximum), or undefined. */
  get receiveMaximum(): number | undefined {
    return this.transport.serverProperties?.receiveMaximum;
  }

  /** A node starts using the connection; the first one opens it, unless autoConnect is off. */
  register(user: object): void {
    this.users.add(user);
    if (this.connectionState !== 'idle') return;
    if (this.currentOptions.autoConnect === false) this.setState('stopped');
    else this.open();
  }

  /** A node stops using it; the last one out closes it. */
  async deregister(user: object): Promise<void> {
    this.users.delete(user);
    if (this.users.size > 0 || this.connectionState === 'idle' || this.connectionState === 'closed') return;
    if (this.connectionState !== 'stopped') await this.close();
    this.connectionState = 'idle';
  }

  /**
   * Opens the connection when it is down on purpose (stopped) or was never opened, or tries again
   * at once when it waits to retry; resolves once connected, rejects with the reason of the first
   * attempt that fails (the connection keeps retrying), or when it is closed or stopped meanwhile.
   */
  connect(): Promise<void> {
    if (this.connectionState === 'connected') return Promise.resolve();
    if (this.connectionState === 'closed')
      return Promise.reject(new ConnectionError('closed', 'the connection is closed'));
    const settled = new Promise<void>((resolve, reject) => {
      const onStatus = (status: ConnectionStatus) => {
        if (status.state === 'connecting') return;
        this.off('status', onStatus);
        if (status.state === 'connected') resolve();
        else
          reject(
            new ConnectionError(
              status.state === 'closed' ? 'closed' : 'not-connected',
              status.reason?.message ?? 'not connected to the broker',
            ),
          );
      };
      this.on('status', onStatus);
    });
    if (this.connectionState === 'idle' || this.connectionState === 'stopped') this.open();
    else if (this.connectionState === 'disconnected') this.reconnectNow();
    return settled;
  }

  /**
   * Leaves the broker as close() does (close message, DISCONNECT) but stays usable: the subscriptions
   * are kept in the table and asked again at the next connect(); publishing fails meanwhile.
   */
  async disconnect(): Promise<void> {
    if (this.connectionState === 'closed' || this.connectionState === 'stopped') return;
    const wasConnected = this.leave();
    this.setState('stopped');
    await this.transport.close(wasConnected);
    // What the session keeps is not known any more (a clean session keeps nothing): all asked again.
    this.table.brokerSessionLost();
  }

  /** New settings, while the connection is down (idle or stopped); they take effect at the next connect. */
  reconfigure(options: ConnectionOptions): void {
    if (this.connectionState !== 'idle' && this.connectionState !== 'stopped')
      throw new Error(`cannot reconfigure a connection that is ${this.connectionState}`);
    this.currentOptions = options;
    this.transport = this.createTransport(options);
  }

  /** The nodes that use it, in the order they registered. */
  get registered(): ReadonlySet<object> {
    return this.users;
  }

  /**
   * Adds a subscription for `subscriber`; the broker is asked only when the filter is new or needs a
   * higher QoS. `durable` subscriptions stay at the broker when a persistent session's connection
   * closes; the others are unsubscribed first, so none is orphaned.
   */
  subscribe(
    filter: string,
    qos: QoS,
    subscriber: Subscriber,
    durable = false,
    options?: SubscriptionOptions,
  ): void {
    const parked = this.parked.get(filter);
    if (parked) this.unpark(parked);
    if (!this.table.has(filter)) {
      const overlapping = this.identifiesSubscriptions ? undefined : this.table.sharedOverlap(filter);
      if (overlapping) this.emit('shared-overlap', filter, overlapping);
    }
    const conflict = this.table.add(filter, qos, subscriber, durable, options);
    // Options exist on MQTT 5 only: elsewhere none is sent, so none conflicts.
    if (conflict && this.options.protocolVersion === 5)
      this.emit('subscription-options-conflict', filter, conflict.asked, conflict.inForce);
    if (this.connected) this.transport.sendSubscriptions([filter]);
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
      this.subscribe(filter, left.qos, parked, true, left.options);
      this.parked.set(filter, parked);
      return;
    }
    this.table.deleteFilter(filter);
    if (this.connected && !keepAtBroker && left.brokerQos !== undefined) this.transport.unsubscribe(filter);
  }

  /** Every subscription of `subscriber`, removed. */
  unsubscribeAll(subscriber: Subscriber, keepAtBroker = false): void {
    for (const filter of this.table.filtersOf(subscriber)) this.unsubscribe(filter, subscriber, keepAtBroker);
  }

  subscriptionsOf(subscriber: Subscriber): HeldSubscription[] {
    return this.table.subscriptionsOf(subscriber);
  }

  /** Every filter held, with the QoS asked of the broker and the subscribers that use it. */
  subscriptionHolders(): { filter: string; qos: QoS; subscribers: Subscriber[] }[] {
    return this.table.holders();
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
    if (this.connectionState !== 'connected') {
      callback(new ConnectionError('not-connected', 'not connected to the broker'));
      return;
    }
    this.transport.publish(topic, payload, options, callback);
  }

  /** Sends the close message and DISCONNECT when connected, then leaves the broker; pending callbacks fail. */
  async close(): Promise<void> {
    const wasConnected = this.leave();
    this.setState('closed');
    await this.transport.close(wasConnected);
  }

  /** Stops retrying and watching, lets go of parked subscriptions; returns whether it was connected. */
  private leave(): boolean {
    this.clearReconnectTimer();
    // Unacknowledged, what they hold comes again in the next session.
    for (const parked of this.parked.values()) parked.release();
    this.parked.clear();
    this.unwatchEmbeddedBrokers?.();
    this.unwatchEmbeddedBrokers = undefined;
    return this.connected;
  }

  /** Connected: subscriptions the broker does not hold go (again), then the birth message. */
  onSessionStarted(sessionPresent: boolean): void {
    this.reconnectAttempt = 0;
    this.lastReason = undefined;
    if (!sessionPresent) this.table.brokerSessionLost();
    // Known only now, said once: an MQTT 5 broker without Subscription Identifiers, for the filters held before.
    if (!acceptsSubscriptionIdentifiers(this.transport.serverProperties) && this.reconnectCount === 0)
      for (const [filter, other] of this.table.sharedOverlaps()) this.emit('shared-overlap', filter, other);
    // Subscriptions first: what the 'connected' status sets going (an outbox draining) then reaches this
    // config's own in nodes too, on the network (SUBSCRIBE is ahead on the wire) as through a core session.
    this.transport.sendSubscriptions(this.table.allFilters());
    this.setState('connected');
    const birth = this.options.birth;
    if (birth) this.publish(birth.topic, birth.payload, birth, () => {});
  }

  onTransportError(error: Error): void {
    this.lastErrorText = error.message;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') {
      this.lastReason = { code: 'refused', message: error.message, returnCode: code };
    } else if (code === 'EMBEDDED_MISSING') {
      this.lastReason = { code: 'embedded-missing', message: error.message };
    } else {
      this.lastReason = { code: 'network', message: error.message };
    }
  }

  onTransportClosed(reason?: DisconnectReason): void {
    if (this.connectionState === 'closed' || this.connectionState === 'stopped') return;
    if (reason) this.lastReason = reason;
    else this.lastReason ??= { code: 'lost', message: 'connection lost' };
    this.lastErrorText = this.lastReason.message;
    this.retryLater();
  }

  onSubscribeRefused(filter: string, returnCode: number): void {
    const subscribers = this.table.refused(filter);
    const failure: SubscribeFailure = { filter, returnCode };
    this.emit('subscribe-failure', failure);
    for (const subscriber of subscribers) subscriber.onSubscribeFailure(failure);
  }

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

  private open() {
    this.transport.open();
    const { endpoint } = this.options;
    if (endpoint.transport === 'embedded') {
      this.unwatchEmbeddedBrokers = watchEmbeddedBrokers((brokerId) => {
        if (brokerId === endpoint.brokerId && this.reconnectTimer) this.reconnectNow();
      });
      if (!embeddedBrokerRunning(endpoint.brokerId)) {
        this.setState('connecting');
        // Wait for the broker to start; report it missing only after the grace period.
        this.reconnectTimer = setTimeout(() => {
          this.lastReason = { code: 'embedded-missing', message: 'embedded broker is not running' };
          this.lastErrorText = this.lastReason.message;
          this.reconnectTimer = setTimeout(
            () => this.reconnectNow(),
            nextReconnectDelay(this.reconnectAttempt++, this.options.backoff),
          );
          this.setState('disconnected');
        }, EMBEDDED_START_GRACE);
        return;
      }
    }
    this.reconnectNow();
  }

  private retryLater() {
    if (this.connectionState === 'closed' || this.connectionState === 'stopped') return;
    const delay = nextReconnectDelay(this.reconnectAttempt++, this.options.backoff);
    this.setState('disconnected', delay);
    this.reconnectTimer = setTimeout(() => this.reconnectNow(), delay);
  }

  private reconnectNow() {
    this.clearReconnectTimer();
    if (this.connectionState === 'closed') return;
    if (this.connectionState === 'disconnected') this.reconnectCount++;
    this.lastReason = undefined;
    this.setState('connecting');
    this.transport.connect();
  }

  private clearReconnectTimer() {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  private setState(state: ConnectionState, retryIn?: number) {
    if (state !== this.connectionState) this.stateSince = Date.now();
    this.connectionState = state;
    const status: ConnectionStatus = { state, reason: this.lastReason };
    if (retryIn !== undefined) status.retryIn = retryIn;
    this.emit('status', status);
  }
}
