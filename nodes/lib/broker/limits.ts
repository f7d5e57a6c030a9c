/** The embedded broker's limits on what network clients may take, and their defaults. */
import { readBoolean, readNumber } from '../config-values.js';

export interface BrokerLimits {
  /** Network connections (TCP, TLS, WebSocket) open at once; one more is answered CONNACK 3 and closed. */
  maxConnections: number;
  /** The largest packet a network client may send, fixed header included, in bytes. */
  maxPacketSize: number;
  /** The most levels in a topic name or filter; Aedes cannot match more than 100. */
  maxTopicLevels: number;
  /** How long a new connection has to send its CONNECT, in milliseconds. */
  connectTimeoutMs: number;
  /**
   * Close a connection whose topics, filters, client id or user name hold control characters
   * (U+0001 to U+001F, U+007F to U+009F), as Mosquitto does; MQTT allows them [MQTT-1.5.3-2 only bars U+0000].
   */
  refuseControlCharacters: boolean;
  /**
   * The longest keep-alive an MQTT 5 client may use, in seconds; one asking more, or none (0), is told
   * this one as the CONNACK's Server Keep Alive and held to it [MQTT-3.2.2-21]. 0: the client's own.
   */
  maxKeepAlive: number;
}

export const DEFAULT_LIMITS: Readonly<BrokerLimits> = {
  maxConnections: 1000,
  maxPacketSize: 1024 * 1024,
  maxTopicLevels: 100,
  connectTimeoutMs: 10_000,
  refuseControlCharacters: false,
  maxKeepAlive: 0,
};

/**
 * The most QoS 2 publications a network client may have awaiting their PUBREL. Each is stored until
 * then, so without a bound a client that never releases them fills the broker's memory up to 65,535
 * stored packets per connection. Aedes 1.2 had this bound (`maxInflightInbound`, 1,000); Aedes
 * 2.0.0-beta.1 branched off before it, so the packet gate keeps it. MQTT 5 clients are told it as
 * their Receive Maximum.
 */
export const MAX_QOS2_AWAITING_RELEASE = 1000;

/**
 * The Topic Alias Maximum told to MQTT 5 clients in the CONNACK: the aliases a client may use for the
 * topics it publishes to, per connection [MQTT-3.2.2-17]. Mosquitto's default is 10.
 */
export const TOPIC_ALIAS_MAXIMUM = 32;

/** The ceiling of maxTopicLevels: the topic matchers under Aedes split at most 100 levels. */
export const MAX_TOPIC_LEVELS = 100;
/** The largest remaining length MQTT can encode, plus the five bytes of a fixed header. */
const MAX_MQTT_PACKET = 268_435_455 + 5;

function whole(value: unknown, fallback: number, min: number, max: number): number {
  const number = Math.floor(readNumber(value, fallback));
  return Math.min(max, Math.max(min, number));
}

/** The limits from the node's settings; a missing or unreadable value takes its default. */
export function readLimits(settings: {
  maxConnections?: unknown;
  maxPacketSize?: unknown;
  maxTopicLevels?: unknown;
  connectTimeout?: unknown;
  refuseControlCharacters?: unknown;
  maxKeepAlive?: unknown;
}): BrokerLimits {
  return {
    maxConnections: whole(settings.maxConnections, DEFAULT_LIMITS.maxConnections, 1, Number.MAX_SAFE_INTEGER),
    maxPacketSize: whole(settings.maxPacketSize, DEFAULT_LIMITS.maxPacketSize, 128, MAX_MQTT_PACKET),
    maxTopicLevels: whole(settings.maxTopicLevels, DEFAULT_LIMITS.maxTopicLevels, 1, MAX_TOPIC_LEVELS),
    connectTimeoutMs: whole(settings.connectTimeout, DEFAULT_LIMITS.connectTimeoutMs / 1000, 1, 3600) * 1000,
    refuseControlCharacters: readBoolean(settings.refuseControlCharacters, false),
    maxKeepAlive: whole(settings.maxKeepAlive, DEFAULT_LIMITS.maxKeepAlive, 0, 65_535),
  };
}
