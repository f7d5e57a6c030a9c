import type { IClientPublishOptions, IConnackPacket, IPublishPacket } from 'mqtt';
import type { QoS } from 'mqtt-packet';
import type { BackoffOptions } from './backoff.js';

export type { IClientPublishOptions, IConnackPacket, IPublishPacket, QoS };

export type Endpoint =
  | { transport: 'embedded'; brokerId: string }
  | { transport: 'mqtt' | 'mqtts' | 'ws' | 'wss'; host: string; port: number; path?: string };

/** A birth, close or will message. */
export interface LifecycleMessage {
  topic: string;
  payload: string;
  qos: QoS;
  retain: boolean;
}

export interface TlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  servername?: string;
  rejectUnauthorized: boolean;
  alpnProtocol?: string;
}

/** 3: MQTT 3.1 (protocol name MQIsdp), 4: MQTT 3.1.1, 5: MQTT 5. */
export type ProtocolVersion = 3 | 4 | 5;

/** MQTT 5 subscription options [MQTT-3.8.3.1]; MQTT 3.1 and 3.1.1 have none. */
export interface SubscriptionOptions {
  /** No Local: messages this connection publishes are not sent back to it. */
  nl: boolean;
  /** Retain As Published: forwarded messages keep the retain flag they were published with. */
  rap: boolean;
  /** Retain Handling: retained messages at subscribe (0), only for a new subscription (1), never (2). */
  rh: 0 | 1 | 2;
}

export const DEFAULT_SUBSCRIPTION_OPTIONS: Readonly<SubscriptionOptions> = { nl: false, rap: false, rh: 0 };

export interface ConnectionOptions {
  endpoint: Endpoint;
  clientId: string;
  protocolVersion: ProtocolVersion;
  /** Whether the connection opens when its first node registers; otherwise it waits for connect(). */
  autoConnect?: boolean;
  /** MQTT 5: topic aliases assigned to the topics published, when the broker allows them. */
  topicAliases?: boolean;
  /** Seconds between PINGREQs when idle. */
  keepalive: number;
  cleanSession: boolean;
  /** MQTT 5 session expiry in seconds, sent when `cleanSession` is false. */
  sessionExpiryInterval?: number;
  username?: string;
  password?: string;
  tls?: TlsOptions;
  birth?: LifecycleMessage;
  close?: LifecycleMessage;
  will?: LifecycleMessage;
  backoff?: Partial<BackoffOptions>;
  /** Milliseconds to wait for CONNACK. */
  connectTimeout?: number;
}

/** `stopped`: down on purpose (no automatic connection, or a disconnect action) until connect(). */
export type ConnectionState = 'idle' | 'stopped' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export type DisconnectCode =
  /** The broker answered CONNACK with a refusal; `returnCode` says why. */
  | 'refused'
  /** The embedded broker node named by the config is not running. */
  | 'embedded-missing'
  /** Socket, DNS or TLS failure; `message` carries the system's text. */
  | 'network'
  /** The broker or the network closed the connection. */
  | 'lost';

export interface DisconnectReason {
  code: DisconnectCode;
  message: string;
  /** CONNACK return code (MQTT 3.1.1) or reason code (MQTT 5). */
  returnCode?: number;
}

export interface ConnectionStatus {
  state: ConnectionState;
  reason?: DisconnectReason;
  /** Milliseconds until the next attempt, while disconnected. */
  retryIn?: number;
}

export interface SubscribeFailure {
  filter: string;
  /** SUBACK return code (0x80 in 3.1.1) or MQTT 5 reason code. */
  returnCode: number;
}

/** What an mqtt in node gives the connection to receive messages. */
export interface Subscriber {
  /** The node it serves, named in the editor's monitor; absent for the connection's own holders. */
  readonly nodeId?: string;
  /**
   * A promise holds the acknowledgment of a QoS 1 or 2 message (PUBACK, PUBREC)
   * until it settles, so the broker redelivers what a crash interrupted.
   */
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void | Promise<void>;
  /**
   * Whether onMessage may hold acknowledgments. A QoS 2 message that such a
   * subscriber matches is passed on when its PUBLISH arrives, since the PUBREC
   * is what it holds; the others get QoS 2 at PUBREL, once the broker has let go
   * of it (exactly once).
   */
  holdsAcknowledgments?: boolean;
  onSubscribeFailure(failure: SubscribeFailure): void;
}

export interface ConnectionEvents {
  status: [status: ConnectionStatus];
  'subscribe-failure': [failure: SubscribeFailure];
  /** A subscription kept for an in node that did not come back: given up, with the messages it held. */
  'subscription-given-up': [filter: string, released: number];
  /**
   * On MQTT 3.1.1, `filter` and `other` overlap and one is shared: a PUBLISH does not name its
   * subscription, so the shared one's subscribers also get the copies meant for the other.
   */
  'shared-overlap': [filter: string, other: string];
  /**
   * MQTT 5: a subscriber asked `asked` for a filter the connection holds with other options; a session
   * has one subscription per filter, so it gets `inForce` (see SubscriptionTable.add).
   */
  'subscription-options-conflict': [filter: string, asked: SubscriptionOptions, inForce: SubscriptionOptions];
}

/** Error given to publish callbacks; `code` lets node files translate it. */
export class ConnectionError extends Error {
  constructor(
    readonly code: 'not-connected' | 'closed' | 'publish-failed',
    message: string,
    readonly returnCode?: number,
  ) {
    super(message);
    this.name = 'ConnectionError';
  }
}

/**
 * Runs once a publish is done with: after the write (QoS 0) or the broker's acknowledgment
 * (QoS 1/2, with its MQTT 5 reason code when not 0), or with a ConnectionError.
 */
export type PublishCallback = (error?: Error, reasonCode?: number) => void;

/** What publishing needs of a connection: the outbox's sender takes this, not a whole BrokerConnection. */
export interface PublishingConnection {
  readonly connected: boolean;
  /** How many QoS 1/2 messages the broker accepts in flight (MQTT 5 Receive Maximum), or undefined. */
  readonly receiveMaximum: number | undefined;
  /** Publishes now or fails now: `callback` gets a ConnectionError when not connected. */
  publish(
    topic: string,
    payload: Buffer | string,
    options: IClientPublishOptions,
    callback: PublishCallback,
  ): void;
  on(event: 'status', listener: (status: ConnectionStatus) => void): unknown;
  off(event: 'status', listener: (status: ConnectionStatus) => void): unknown;
}
