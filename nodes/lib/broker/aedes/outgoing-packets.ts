/**
 * What the broker sends a client, shaped per connection at the one place Aedes writes a packet:
 * mqtt-packet's `writeToStream`, which Aedes calls with the client's stream for every packet
 * (its lib/write.js). Aedes 2.0.0-beta.1 keeps the client's Maximum Packet Size without holding
 * to it, sends no Topic Alias, and tells the CONNACK one Maximum Packet Size for every client,
 * where the embedded broker limits network clients only; this file does the three, per connection.
 *
 * The packet Aedes hands over is never changed: an aliased PUBLISH goes out as a copy, so the
 * message that the persistence keeps, and sends again after a reconnection, has its topic name.
 */
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { NOT_AUTHORIZED, PUBLISH_NOT_AUTHORIZED } from '../mqtt-frames.js';
import type { TrafficCounters } from '../traffic.js';

/** The fields of an outgoing packet read here (mqtt-packet's own types make `properties` a union per command). */
export interface OutgoingPacket {
  cmd: string;
  topic?: string | Buffer;
  qos?: number;
  messageId?: number;
  reasonCode?: number;
  payload?: Buffer | string;
  retain?: boolean;
  dup?: boolean;
  properties?: Record<string, unknown>;
  /** A SUBACK's reason code (MQTT 5) or granted QoS per filter. */
  granted?: number[];
}

type WriteToStream = ((packet: OutgoingPacket, stream: Writable, opts?: object) => boolean) & {
  cacheNumbers: boolean;
};

interface MqttPacketModule {
  writeToStream: WriteToStream;
  generate(packet: OutgoingPacket, opts?: object): Buffer;
}

/** The largest packet MQTT can encode: a remaining length of 268,435,455 and a five-byte fixed header. */
const LARGEST_MQTT_PACKET = 268_435_460;

export interface OutgoingTerms {
  /** Told to the client in a successful MQTT 5 CONNACK as the broker's Maximum Packet Size; undefined: nothing told. */
  connackMaximumPacketSize?: number;
  /** A PUBLISH larger than the client's Maximum Packet Size was not sent [MQTT-3.1.2-25]. */
  discarded(packet: OutgoingPacket, size: number, maximum: number): void;
}

/** What one connection's client gets: its topic aliases, and no packet above its Maximum Packet Size. */
export class OutgoingPackets {
  /** The client's Topic Alias Maximum from its CONNECT; 0: no alias may be sent [MQTT-3.1.2-27]. */
  private aliasMaximum = 0;
  /** The client's Maximum Packet Size from its CONNECT; infinite when it gave none. */
  private maximumPacketSize = Number.POSITIVE_INFINITY;
  /** Whether a refusal may carry a Reason String: not if the CONNECT said Request Problem Information 0 [MQTT-3.1.2-29]. */
  private problemInformation = true;
  /** The alias of each topic sent on this connection: the first topics, up to the client's maximum. */
  private readonly aliases = new Map<string, number>();
  /** Where the packets sent are counted, when the broker counts them. */
  traffic: TrafficCounters | undefined;

  constructor(private readonly terms: OutgoingTerms) {}

  /** Reads the client's limits from its CONNECT (MQTT 5 properties; none on MQTT 3.1.1). */
  connecting(
    properties:
      | { topicAliasMaximum?: number; maximumPacketSize?: number; requestProblemInformation?: boolean }
      | undefined,
  ): void {
    this.aliasMaximum = properties?.topicAliasMaximum ?? 0;
    this.problemInformation = properties?.requestProblemInformation !== false;
    const maximum = properties?.maximumPacketSize;
    this.maximumPacketSize = maximum && maximum < LARGEST_MQTT_PACKET ? maximum : Number.POSITIVE_INFINITY;
  }

  /** Writes `packet` to `stream` as this client is to get it; returns what writeToStream returns. */
  write(
    packet: OutgoingPacket,
    stream: Writable,
    opts: object | undefined,
    module: MqttPacketModule,
  ): boolean {
    if (this.traffic) {
      this.traffic.packetsSent++;
      if (packet.cmd === 'publish') this.traffic.publishSent++;
    }
    if (packet.cmd === 'publish') return this.writePublish(packet, stream, opts, module);
    if (packet.cmd === 'connack') return module.writeToStream(this.connack(packet), stream, opts);
    if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.reasonCode === undefined)
      return module.writeToStream(succeeded(packet), stream, opts);
    const reason = this.problemInformation ? refusalReason(packet) : undefined;
    if (reason) return module.writeToStream(withReason(packet, reason), stream, opts);
    return module.writeToStream(packet, stream, opts);
  }

  private connack(packet: OutgoingPacket): OutgoingPacket {
    // A CONNACK may say why it refuses whatever the client asked [MQTT-3.1.2-29]; MQTT 5's reasonCode only.
    const refusal = packet.reasonCode ? CONNACK_REFUSALS[packet.reasonCode] : undefined;
    if (refusal) return withReason(packet, refusal);
    // Only a successful MQTT 5 CONNACK has properties of the broker's to tell.
    if (packet.reasonCode !== 0 || !packet.properties) return packet;
    const maximum = this.terms.connackMaximumPacketSize;
    // Aedes always says "Shared Subscription Available: 0" and has no option to say otherwise; the
    // embedded broker has them (shared-subscriptions.ts) [MQTT-3.2.2-13 and 3.2.2.3.17].
    const properties = { ...packet.properties, sharedSubscriptionAvailable: true };
    return {
      ...packet,
      properties: maximum === undefined ? properties : { ...properties, maximumPacketSize: maximum },
    };
  }

  private writePublish(
    packet: OutgoingPacket,
    stream: Writable,
    opts: object | undefined,
    module: MqttPacketModule,
  ): boolean {
    const { topic } = packet;
    let alias = typeof topic === 'string' && this.aliasMaximum > 0 ? this.aliases.get(topic) : undefined;
    const known = alias !== undefined;
    // First topics first, kept for the connection: a topic seen after the table is full goes by its name.
    if (!known && typeof topic === 'string' && this.aliases.size < this.aliasMaximum)
      alias = this.aliases.size + 1;
    // Known: the alias alone stands for the topic [MQTT-3.3.2-12]; new: the topic sets it.
    const outgoing =
      alias === undefined ? withoutAlias(packet) : withAlias(packet, known ? '' : (topic as string), alias);
    if (this.maximumPacketSize === Number.POSITIVE_INFINITY) {
      if (alias !== undefined && !known) this.aliases.set(topic as string, alias);
      return module.writeToStream(outgoing, stream, opts);
    }
    // Measured as it would go out; encoded once, written in one piece.
    const bytes = module.generate(outgoing, opts);
    if (bytes.length > this.maximumPacketSize) {
      // Not sent [MQTT-3.1.2-24], and taken as sent [MQTT-3.1.2-25]; an alias it would have set stays free.
      this.terms.discarded(packet, bytes.length, this.maximumPacketSize);
      return true;
    }
    if (alias !== undefined && !known) this.aliases.set(topic as string, alias);
    return stream.write(bytes);
  }
}

/** MQTT 5 reason code → the Reason String of a CONNACK refusing with it. */
const CONNACK_REFUSALS: Record<number, string> = {
  0x86: 'bad user name or password',
  0x87: 'not authorized',
};

/** Why an MQTT 5 acknowledgment from Aedes refuses, when it does for the topic rules (0x87). */
function refusalReason(packet: OutgoingPacket): string | undefined {
  if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.reasonCode === NOT_AUTHORIZED)
    return PUBLISH_NOT_AUTHORIZED;
  if (packet.cmd === 'suback' && packet.granted?.includes(NOT_AUTHORIZED))
    return 'not authorized to subscribe to a filter refused (0x87)';
  return undefined;
}

/** `packet` with `reason` as its Reason String (on MQTT 3.1.1, mqtt-packet writes no properties). */
function withReason(packet: OutgoingPacket, reason: string): OutgoingPacket {
  return { ...packet, properties: { ...packet.properties, reasonString: reason } };
}

/**
 * A PUBACK or PUBREC with no reason code, which Aedes 2.0.0-beta.1 sends for a publication it took:
 * told Success, mqtt-packet writes it on MQTT 5 in the short form [MQTT-3.4.2-1] (4 bytes, as on
 * MQTT 3.1.1) instead of adding a Success code and an empty Property Length, two more writes for
 * every QoS 1 and 2 publication.
 */
function succeeded(packet: OutgoingPacket): OutgoingPacket {
  return { cmd: packet.cmd, messageId: packet.messageId, reasonCode: 0, properties: packet.properties };
}

/**
 * A copy of `packet` as it goes out with `alias`: the fields writeToStream reads, built at once (a
 * spread of Aedes' packet, with its broker id and counter, costs more than the write it serves).
 */
function withAlias(packet: OutgoingPacket, topic: string, alias: number): OutgoingPacket {
  return {
    cmd: 'publish',
    topic,
    payload: packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    dup: packet.dup,
    messageId: packet.messageId,
    properties: { ...packet.properties, topicAlias: alias },
  };
}

/**
 * `packet` with no Topic Alias: one that came with it would be the publisher's, which this client never
 * set. Aedes clears it once it has resolved it; this keeps the rule whatever path a message took.
 */
function withoutAlias(packet: OutgoingPacket): OutgoingPacket {
  if (packet.properties?.topicAlias === undefined) return packet;
  return { ...packet, properties: { ...packet.properties, topicAlias: undefined } };
}

/** The shaping of each connection's stream; a stream with none is written as mqtt-packet writes it. */
const shaped = new WeakMap<object, OutgoingPackets>();

let installed: MqttPacketModule | undefined;

/**
 * Replaces `writeToStream` on the mqtt-packet that Aedes imports (resolved from Aedes' own folder,
 * so another copy elsewhere in node_modules is not the one changed). Every other stream, MQTT.js's
 * included, goes straight to the original after one WeakMap look-up.
 */
function install(): MqttPacketModule {
  if (installed) return installed;
  const module = createRequire(require.resolve('aedes'))('mqtt-packet') as MqttPacketModule;
  const original = module.writeToStream;
  const originalModule: MqttPacketModule = { writeToStream: original, generate: module.generate };
  const writeToStream = ((packet, stream, opts) => {
    const outgoing = shaped.get(stream);
    return outgoing ? outgoing.write(packet, stream, opts, originalModule) : original(packet, stream, opts);
  }) as WriteToStream;
  // MQTT.js sets it (writeCache: false) on what it finds there: passed on to the original.
  Object.defineProperty(writeToStream, 'cacheNumbers', {
    get: () => original.cacheNumbers,
    set: (value: boolean) => {
      original.cacheNumbers = value;
    },
  });
  module.writeToStream = writeToStream;
  installed = module;
  return module;
}

/** Makes what Aedes writes to `stream` go through `outgoing`; lasts as long as the stream. */
export function shapeOutgoing(stream: object, outgoing: OutgoingPackets): void {
  install();
  shaped.set(stream, outgoing);
}

/** The shaping of `stream`'s packets, if any. */
export function outgoingOf(stream: object): OutgoingPackets | undefined {
  return shaped.get(stream);
}
