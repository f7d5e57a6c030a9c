import type { Duplex } from 'node:stream';
import type { CoreSession } from '../broker/core-session.js';
import { embeddedBrokerMissing, embeddedBrokers } from '../broker/registry.js';
import { createDuplexPair } from '../duplex-pair.js';
import type { SubscriptionTable } from './subscription-table.js';
import type { Transport, TransportHost } from './transport.js';
import type { ProtocolVersion } from './types.js';
import {
  ConnectionError,
  type ConnectionOptions,
  type IClientPublishOptions,
  type PublishCallback,
} from './types.js';

/** Whether the embedded broker node `brokerId` runs in this process now. */
export function embeddedBrokerRunning(brokerId: string): boolean {
  return embeddedBrokers.get(brokerId) !== undefined;
}

/** Calls `listener` with the node id of each embedded broker that starts in this process, until unwatched. */
export function watchEmbeddedBrokers(listener: (brokerId: string) => void): () => void {
  embeddedBrokers.on('available', listener);
  return () => embeddedBrokers.off('available', listener);
}

/**
 * Whether a connection to the embedded broker goes through the broker's core (a CoreSession)
 * rather than MQTT over an in-process stream: for a clean session over MQTT 3.1 or 3.1.1. A core session
 * hands a message over as topic, payload, QoS and retain; MQTT 5 properties (user properties,
 * content type, response topic, correlation data, message expiry) and reason codes travel in
 * packets, so an MQTT 5 connection speaks MQTT, as it would over TCP.
 */
export function throughBrokerCore(options: {
  cleanSession: boolean;
  protocolVersion: ProtocolVersion;
}): boolean {
  return options.cleanSession && options.protocolVersion !== 5;
}

/**
 * An MQTT connection to the embedded broker `brokerId` as a network client has one, for a
 * persistent session or MQTT 5 (MqttjsTransport speaks MQTT over it). When the broker is not running,
 * or stopping, the stream fails at once as a refused socket would, and is retried as one is.
 */
export function openInProcessStream(brokerId: string): Duplex {
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

/**
 * A clean session to the embedded broker in the same process, through its core (a
 * CoreSession) rather than MQTT: there is no session state for packets to protect,
 * and in-process packets cost most of a message's time.
 */
export class CoreSessionTransport implements Transport {
  private session: CoreSession | undefined;
  readonly serverProperties = undefined;

  constructor(
    private readonly brokerId: string,
    private readonly options: ConnectionOptions,
    private readonly table: SubscriptionTable,
    private readonly host: TransportHost,
  ) {}

  open(): void {}

  /** Opens a core session; a refusal or a missing broker is retried as a lost connection is. */
  connect(): void {
    const broker = embeddedBrokers.get(this.brokerId);
    const { clientId, username, password } = this.options;
    const opening = broker
      ? broker.openCoreSession({ clientId, username, password })
      : Promise.reject(embeddedBrokerMissing());
    opening.then(
      (session) => {
        if (this.host.state !== 'connecting') return session.close();
        this.session = session;
        const table = this.table;
        session.receiver = (topic, payload, qos, retain) =>
          table.dispatchFromCoreSession(topic, payload, qos, retain);
        session.once('close', () => this.onSessionClosed(session));
        // A core session is a clean session: the broker holds none of the subscriptions.
        this.host.onSessionStarted(false);
      },
      (error: Error) => {
        if (this.host.state !== 'connecting') return;
        this.host.onTransportError(error);
        this.host.onTransportClosed();
      },
    );
  }

  publish(
    topic: string,
    payload: Buffer | string,
    options: IClientPublishOptions,
    callback: PublishCallback,
  ): void {
    const session = this.session;
    if (!session) return callback(new ConnectionError('not-connected', 'not connected to the broker'));
    const message = {
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
    };
    session.publish(message, (error) => {
      if (!error) return callback();
      const code = session.closed
        ? this.host.state === 'closed'
          ? 'closed'
          : 'not-connected'
        : 'publish-failed';
      callback(new ConnectionError(code, error.message));
    });
  }

  sendSubscriptions(filters: string[]): void {
    const session = this.session;
    if (!session) return;
    for (const filter of filters) {
      const request = this.table.requestAtBroker(filter);
      if (!request) continue;
      session.subscribe(filter, request.qos).then(
        (granted) => {
          if (!granted && session === this.session) this.host.onSubscribeRefused(filter, 0x80);
        },
        // The broker could not take the filter (too many levels): refused, as its SUBACK would say.
        () => {
          if (session === this.session) this.host.onSubscribeRefused(filter, 0x80);
        },
      );
    }
  }

  unsubscribe(filter: string): void {
    this.session?.unsubscribe(filter);
  }

  async close(wasConnected: boolean): Promise<void> {
    const session = this.session;
    if (!session) return;
    const closeMessage = this.options.close;
    if (wasConnected && closeMessage) {
      // Taken by the broker in the same turn, whether or not it is stopping too.
      this.publish(closeMessage.topic, closeMessage.payload, closeMessage, () => {});
    }
    this.session = undefined;
    session.close();
  }

  private onSessionClosed(session: CoreSession) {
    if (session !== this.session) return;
    this.session = undefined;
    this.host.onTransportClosed({ code: 'embedded-missing', message: 'embedded broker stopped' });
  }
}
