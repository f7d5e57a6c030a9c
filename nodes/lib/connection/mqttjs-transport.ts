import type { Duplex } from 'node:stream';
import mqtt, { MqttClient, type ClientSubscribeCallback, type IClientOptions } from 'mqtt';
import { keepAliveTimer } from './keep-alive-timer.js';
import { batchWrites, internals, storeWithoutCopy } from './mqttjs-internals.js';
import type { SubscriptionTable } from './subscription-table.js';
import { acceptsSubscriptionIdentifiers, type Transport, type TransportHost } from './transport.js';
import {
  ConnectionError,
  type ConnectionOptions,
  type IClientPublishOptions,
  type IConnackPacket,
  type IPublishPacket,
  type PublishCallback,
  type QoS,
} from './types.js';

/** Milliseconds `close()` waits for the close message and DISCONNECT before dropping the socket. */
const GRACEFUL_CLOSE_TIMEOUT = 3000;

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

/**
 * An MQTT connection through MQTT.js: to a network broker, or to the embedded broker over
 * an in-process stream (`openStream`) for a persistent session. A QoS 1/2 message that a
 * subscriber holds (see Subscriber.onMessage) is acknowledged only once the flow is done
 * with it, which MQTT.js has no API for: the patches that do it are below, each with why.
 */
/**
 * What a held message calls MQTT.js back with, so it sends no PUBACK; MQTT.js only tests it. One
 * for all: a new Error per message (its stack trace) was a tenth of an MQTT 5 flow's CPU time.
 */
const ACKNOWLEDGMENT_HELD = new Error('acknowledgment held until the flow completes');

export class MqttjsTransport implements Transport {
  private client: MqttClient | undefined;
  /** Whether the client has made its first connection attempt (MQTT.js wants connect() once, reconnect() after). */
  private attempted = false;
  /** MQTT 5 reason codes of PUBACK/PUBREC packets not yet matched to their publish callback, by message id. */
  private readonly ackReasons = new Map<number, number>();
  /** Acknowledgments held by subscribers, by the packet they are for. */
  private readonly heldAcks = new WeakMap<IPublishPacket, Promise<void>[]>();
  /**
   * QoS 2 messages passed on at PUBLISH, by id, with what holds their PUBREC; they are
   * not passed on again at PUBREL. Session state: cleared when the broker has none.
   */
  private readonly earlyQos2 = new Map<number, Promise<unknown> | undefined>();
  /** PUBRECs held until the flow completes, by message id. */
  private readonly heldPubrecs = new Map<number, Promise<unknown>>();

  constructor(
    private readonly options: ConnectionOptions,
    private readonly table: SubscriptionTable,
    private readonly host: TransportHost,
    /** Opens the stream to the embedded broker; undefined for a network broker. */
    private readonly openStream?: () => Duplex,
  ) {}

  get serverProperties(): IConnackPacket['properties'] | undefined {
    // MQTT.js keeps the CONNACK properties but does not expose them.
    return this.client && internals(this.client)._serverProperties;
  }

  open(): void {
    const options = this.clientOptions();
    const openStream = this.openStream;
    // MQTT.js's stream builder type wants its own stream class; any Duplex is what it uses.
    const client = openStream ? new MqttClient(openStream as never, options) : mqtt.connect(options);
    this.client = client;
    this.attempted = false;
    client.on('connect', (connack) => {
      // Nagle's algorithm would hold small packets back for up to 40 ms.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.host.onSessionStarted(connack.sessionPresent);
    });
    client.on('message', (topic, payload, packet) => {
      if (packet.qos === 2 && this.earlyQos2.delete(packet.messageId as number)) return;
      const holds = this.table.dispatch(topic, payload, packet);
      if (holds) this.heldAcks.set(packet, holds);
    });
    client.on('packetreceive', (packet) => {
      // As MQTT.js does with its own QoS 2 state: a new session reuses message ids.
      if (packet.cmd === 'connack' && !packet.sessionPresent) this.earlyQos2.clear();
      else if (packet.cmd === 'publish' && packet.qos === 2) this.dispatchQos2Early(packet);
    });
    this.holdPubrecs(client);
    batchWrites(client);
    storeWithoutCopy(client);
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
    client.on('error', (error) => this.host.onTransportError(error));
    client.on('close', () => {
      if (client === this.client) this.host.onTransportClosed();
    });
  }

  connect(): void {
    const client = this.client;
    if (!client) return;
    if (!this.attempted) {
      this.attempted = true;
      client.connect();
      return;
    }
    // Passing the stores keeps unacknowledged QoS 1/2 messages, resent after CONNACK; MQTT.js types
    // reconnect()'s argument as its whole options object.
    client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore } as never);
  }

  publish(
    topic: string,
    payload: Buffer | string,
    options: IClientPublishOptions,
    callback: PublishCallback,
  ): void {
    const client = this.client;
    if (!client) return callback(new ConnectionError('not-connected', 'not connected to the broker'));
    client.publish(topic, payload, options, (error, packet) => {
      const messageId = (packet as { messageId?: number } | undefined)?.messageId;
      const reasonCode = messageId === undefined ? undefined : this.ackReasons.get(messageId);
      if (messageId !== undefined) this.ackReasons.delete(messageId);
      if (!error) return callback(undefined, reasonCode);
      const returnCode = (error as { code?: unknown }).code;
      callback(
        new ConnectionError(
          this.host.state === 'closed' ? 'closed' : 'publish-failed',
          error.message,
          typeof returnCode === 'number' ? returnCode : undefined,
        ),
      );
    });
  }

  /**
   * Subscribes the filters whose QoS at the broker is not the one wanted: in one
   * SUBSCRIBE packet on MQTT 3.1.1; on MQTT 5 one packet per filter, since a
   * packet carries one Subscription Identifier.
   */
  sendSubscriptions(filters: string[]): void {
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
          this.host.onSubscribeRefused(filter, code);
      });
    };
    // Without identifiers a broker's messages are told apart by topic alone, as on MQTT 3.1.1.
    const identified = acceptsSubscriptionIdentifiers(this.serverProperties);
    for (const filter of filters) {
      const request = this.table.requestAtBroker(filter);
      if (!request) continue;
      if (this.options.protocolVersion === 5) {
        const { nl, rap, rh } = request.options;
        const properties = identified ? { subscriptionIdentifier: request.subscriptionId } : undefined;
        client.subscribe(filter, { qos: request.qos, nl, rap, rh, properties }, onGranted);
      } else {
        wanted[filter] = { qos: request.qos };
      }
    }
    if (Object.keys(wanted).length > 0) client.subscribe(wanted, onGranted);
  }

  unsubscribe(filter: string): void {
    this.client?.unsubscribe(filter);
  }

  /** Sends the close message and DISCONNECT when connected, then drops the socket; pending callbacks fail. */
  async close(wasConnected: boolean): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    const closeMessage = this.options.close;
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
      // MQTT.js only keeps the id `set` returns, to hand it to `clear`: a number does as well as a Timeout.
      timerVariant: keepAliveTimer() as unknown as IClientOptions['timerVariant'],
    };
    // MQTT.js calls its debug logger several times per packet, a few percent of the time per message even
    // when disabled: it is kept only when DEBUG asks for it.
    if (!/mqttjs/.test(process.env.DEBUG ?? '')) options.log = () => {};
    // MQTT 3.1 names its protocol MQIsdp; MQTT.js sends 'MQTT' unless told.
    if (o.protocolVersion === 3) options.protocolId = 'MQIsdp';
    // MQTT.js forgets the aliases at each CONNACK and stores a QoS 1/2 packet with its topic name, so a
    // resend after a reconnect (its own, or an outbox's, which publishes afresh) never uses a stale alias.
    if (o.protocolVersion === 5 && o.topicAliases) options.autoAssignTopicAlias = true;
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

  /** A QoS 2 PUBLISH that a holding subscriber matches goes to every subscriber now, its PUBREC held. */
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
   * Patch of MQTT.js's internal _sendPacket, to hold PUBRECs. MQTT.js sends a PUBREC as soon
   * as it has stored a QoS 2 message and reads no further packet until it is written, with no
   * hook in between. A held one is reported written at once (the reader goes on) and goes out
   * when the flow completes, if the connection it answers is still the current one; otherwise
   * the broker sends the PUBLISH again.
   */
  private holdPubrecs(client: MqttClient) {
    const patched = internals(client);
    const send = patched._sendPacket.bind(client);
    patched._sendPacket = (packet, callback, ...rest) => {
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

  /**
   * Replaces MQTT.js's handleMessage (its documented hook) to hold PUBACKs. MQTT.js acknowledges
   * a message when handleMessage calls back, and reads no further packet until then. A held
   * message calls back at once with an error, so MQTT.js sends no PUBACK and the reader goes on
   * (keep-alive answers still arrive); its PUBACK goes through the internal _sendPacket when
   * every hold has settled, if the connection it came on is still the current one; otherwise
   * the broker redelivers it.
   */
  private handleMessage(client: MqttClient, packet: IPublishPacket, callback: (error?: Error) => void) {
    const holds = this.heldAcks.get(packet);
    this.heldAcks.delete(packet);
    // At QoS 2 this comes at PUBREL: the broker has let go already, and PUBCOMP is no acknowledgment to hold.
    if (!holds || packet.qos !== 1) return callback();
    const stream = client.stream;
    callback(ACKNOWLEDGMENT_HELD);
    void Promise.allSettled(holds).then(() => {
      if (client.stream !== stream || !client.connected) return;
      // MQTT.js has no public way to send an acknowledgment later.
      internals(client)._sendPacket({ cmd: 'puback', messageId: packet.messageId, reasonCode: 0 });
    });
  }
}
