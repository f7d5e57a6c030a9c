import type {
  ConnectionState,
  DisconnectReason,
  IClientPublishOptions,
  IConnackPacket,
  PublishCallback,
} from './types.js';

/**
 * How a BrokerConnection reaches its broker: MQTT.js over the network or an in-process
 * stream (mqttjs-transport.ts), or a core session of the embedded broker
 * (in-process-transport.ts). The connection keeps the state, the retries and the
 * subscription table; a transport carries packets, or what stands for them.
 */
export interface Transport {
  /** The broker's CONNACK properties (MQTT 5), e.g. Receive Maximum. */
  readonly serverProperties: IConnackPacket['properties'] | undefined;
  /** Gets ready for a first attempt, after the connection was idle. */
  open(): void;
  /** Starts one attempt: it ends in the host's onSessionStarted, or in onTransportClosed. */
  connect(): void;
  /** Publishes on the current connection; the host has checked that it is connected. */
  publish(
    topic: string,
    payload: Buffer | string,
    options: IClientPublishOptions,
    callback: PublishCallback,
  ): void;
  /** Asks the broker for those of `filters` that it does not hold at the QoS wanted (see SubscriptionTable). */
  sendSubscriptions(filters: string[]): void;
  /** Tells the broker that no subscriber wants `filter` any more. */
  unsubscribe(filter: string): void;
  /** Sends the close message when `wasConnected`, then leaves the broker; the host's state is 'closed' already. */
  close(wasConnected: boolean): Promise<void>;
}

/**
 * Whether a broker lets a SUBSCRIBE carry a Subscription Identifier: unless its CONNACK says it has
 * none (AWS IoT Core), when one makes it close the connection (MQTT 5, 3.2.2.3.12).
 */
export function acceptsSubscriptionIdentifiers(
  serverProperties: IConnackPacket['properties'] | undefined,
): boolean {
  return serverProperties?.subscriptionIdentifiersAvailable !== false;
}

/** What a transport tells the connection it serves. */
export interface TransportHost {
  readonly state: ConnectionState;
  /** The broker accepted the session; `sessionPresent` says whether it kept the subscriptions. */
  onSessionStarted(sessionPresent: boolean): void;
  /** What went wrong, kept as the reason the connection is down; onTransportClosed follows. */
  onTransportError(error: Error): void;
  /** The attempt failed or the connection ended; `reason` replaces the one kept, when given. */
  onTransportClosed(reason?: DisconnectReason): void;
  onSubscribeRefused(filter: string, returnCode: number): void;
}
