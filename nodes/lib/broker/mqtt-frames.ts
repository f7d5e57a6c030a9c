/**
 * MQTT packets as bytes (3.1, 3.1.1 and 5): cutting a byte stream into packets, and reading
 * the fields the embedded broker checks before Aedes parses them. Strings stay
 * raw bytes here: their UTF-8 must be checked before anything decodes them. MQTT 5 puts
 * properties between the fields; they are stepped over, and left to Aedes to read.
 */

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  /** MQTT 5 only. */
  AUTH: 15,
} as const;

/** The protocol level of MQTT 5 in a CONNECT; 3 is MQTT 3.1 and 4 MQTT 3.1.1. */
export const MQTT5 = 5;

/** One packet: its fixed header's type and flags, the rest (variable header and payload), and where it lies. */
export interface Frame {
  type: number;
  flags: number;
  body: Buffer;
  /** Offsets of the whole packet in the buffer the splitter returned. */
  start: number;
  end: number;
}

export type FramingProblem = 'malformed-length' | 'too-large';

/** The largest remaining length four bytes can carry [MQTT-2.2.3]. */
const MAX_REMAINING_LENGTH = 268_435_455;

/**
 * Cuts a byte stream into packets. A packet longer than `maxPacketSize` (fixed
 * header included) is refused as soon as its length is known, before its body arrives.
 */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** The length of the packet being received, once its fixed header is in; 0 before. */
  private awaited = 0;

  constructor(private readonly maxPacketSize: number) {}

  /** The bytes held for a packet not complete yet. */
  get buffered(): number {
    return this.pendingLength;
  }

  /** The first byte of the packet not complete yet (its type and flags), when one has begun. */
  get pendingFirstByte(): number | undefined {
    return this.pendingLength > 0 ? this.pending[0][0] : undefined;
  }

  /** Hands over the bytes held for an incomplete packet, for a caller that stops cutting the stream. */
  takeBuffered(): Buffer | undefined {
    if (this.pendingLength === 0) return undefined;
    const rest = Buffer.concat(this.pending, this.pendingLength);
    this.pending = [];
    this.pendingLength = 0;
    this.awaited = 0;
    return rest;
  }

  /**
   * Adds `chunk`; returns the buffer the complete packets lie in (what is left
   * over is kept for the next chunk) and the packets, or the framing problem.
   */
  push(chunk: Buffer): { data: Buffer; frames: Frame[] } | FramingProblem {
    if (this.awaited > 0 && this.pendingLength + chunk.length < this.awaited) {
      this.pending.push(chunk);
      this.pendingLength += chunk.length;
      return { data: chunk, frames: [] };
    }
    const data =
      this.pendingLength === 0
        ? chunk
        : Buffer.concat([...this.pending, chunk], this.pendingLength + chunk.length);
    this.pending = [];
    this.pendingLength = 0;
    this.awaited = 0;
    const frames: Frame[] = [];
    let offset = 0;
    while (offset < data.length) {
      const header = readFixedHeader(data, offset);
      if (header === 'malformed') return 'malformed-length';
      if (header === 'incomplete') break;
      const total = header.headerLength + header.remainingLength;
      if (total > this.maxPacketSize) return 'too-large';
      if (offset + total > data.length) {
        this.awaited = total;
        break;
      }
      frames.push({
        type: data[offset] >> 4,
        flags: data[offset] & 0x0f,
        body: data.subarray(offset + header.headerLength, offset + total),
        start: offset,
        end: offset + total,
      });
      offset += total;
    }
    if (offset < data.length) {
      // Copied, so a small remainder does not hold a large chunk in memory.
      const rest = Buffer.from(data.subarray(offset));
      this.pending = [rest];
      this.pendingLength = rest.length;
    }
    return { data, frames };
  }
}

function readFixedHeader(
  data: Buffer,
  offset: number,
): { headerLength: number; remainingLength: number } | 'incomplete' | 'malformed' {
  let remainingLength = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (offset + i >= data.length) return 'incomplete';
    const byte = data[offset + i];
    remainingLength += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      return remainingLength <= MAX_REMAINING_LENGTH ? { headerLength: 1 + i, remainingLength } : 'malformed';
    }
    multiplier *= 128;
  }
  return 'malformed';
}

/** Reads fields one after another; every read returns undefined past the end of the packet. */
class FieldReader {
  offset = 0;

  constructor(private readonly body: Buffer) {}

  get remaining(): number {
    return this.body.length - this.offset;
  }

  byte(): number | undefined {
    return this.offset < this.body.length ? this.body[this.offset++] : undefined;
  }

  uint16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const value = this.body.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  /** A variable byte integer [MQTT-1.5.5-1]: at most four bytes. */
  varint(): number | undefined {
    let value = 0;
    for (let i = 0, multiplier = 1; i < 4; i++, multiplier *= 128) {
      const byte = this.byte();
      if (byte === undefined) return undefined;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return value;
    }
    return undefined;
  }

  /** The blocks of MQTT 5 properties stepped over, each without its length, unread. */
  readonly propertyBlocks: Buffer[] = [];

  /** Steps over MQTT 5 properties (their length, then them); false when they run past the packet. */
  skipProperties(): boolean {
    const length = this.varint();
    if (length === undefined || this.remaining < length) return false;
    this.propertyBlocks.push(this.body.subarray(this.offset, this.offset + length));
    this.offset += length;
    return true;
  }

  /** A length-prefixed field: a UTF-8 string or binary data. */
  prefixed(): Buffer | undefined {
    const length = this.uint16();
    if (length === undefined || this.remaining < length) return undefined;
    const value = this.body.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
}

export interface ConnectFields {
  protocolName: Buffer;
  /** The protocol level with the bridge bit (0x80) removed, as Aedes reads it. */
  level: number;
  flags: number;
  clientId: Buffer;
  willTopic: Buffer | undefined;
  willQos: number;
  username: Buffer | undefined;
  hasPassword: boolean;
  /** Bytes after the last field the flags announce: a field present without its flag. */
  trailingBytes: number;
  /** The MQTT 5 property blocks (the CONNECT's, the will's), unread; none before MQTT 5. */
  properties: Buffer[];
}

export const ConnectFlag = {
  RESERVED: 0x01,
  CLEAN_SESSION: 0x02,
  WILL: 0x04,
  WILL_QOS: 0x18,
  WILL_RETAIN: 0x20,
  PASSWORD: 0x40,
  USERNAME: 0x80,
} as const;

/** The fields of a CONNECT of level 3, 4 or 5; undefined when a field runs past the packet, or for another level. */
export function readConnect(body: Buffer): ConnectFields | undefined {
  const reader = new FieldReader(body);
  const protocolName = reader.prefixed();
  const rawLevel = reader.byte();
  const flags = reader.byte();
  const keepalive = reader.uint16();
  if (!protocolName || rawLevel === undefined || flags === undefined || keepalive === undefined)
    return undefined;
  const level = rawLevel & 0x7f;
  if (level !== 3 && level !== 4 && level !== MQTT5) return undefined;
  if (level === MQTT5 && !reader.skipProperties()) return undefined;
  const clientId = reader.prefixed();
  if (!clientId) return undefined;
  let willTopic: Buffer | undefined;
  if (flags & ConnectFlag.WILL) {
    if (level === MQTT5 && !reader.skipProperties()) return undefined;
    willTopic = reader.prefixed();
    if (!willTopic || !reader.prefixed()) return undefined;
  }
  let username: Buffer | undefined;
  if (flags & ConnectFlag.USERNAME) {
    username = reader.prefixed();
    if (!username) return undefined;
  }
  const hasPassword = (flags & ConnectFlag.PASSWORD) !== 0;
  if (hasPassword && !reader.prefixed()) return undefined;
  return {
    protocolName,
    level,
    flags,
    clientId,
    willTopic,
    willQos: (flags & ConnectFlag.WILL_QOS) >> 3,
    username,
    hasPassword,
    trailingBytes: reader.remaining,
    properties: reader.propertyBlocks,
  };
}

/** The protocol level of a CONNECT, read even when the rest is not (undefined when too short). */
export function connectLevel(body: Buffer): number | undefined {
  const reader = new FieldReader(body);
  if (!reader.prefixed()) return undefined;
  const level = reader.byte();
  return level === undefined ? undefined : level & 0x7f;
}

export interface PublishFields {
  qos: number;
  topic: Buffer;
  /** Undefined at QoS 0, which has none. */
  packetId: number | undefined;
  /** The MQTT 5 property block, unread; none before MQTT 5. */
  properties: Buffer[];
}

export function readPublish(flags: number, body: Buffer, level: number): PublishFields | undefined {
  const reader = new FieldReader(body);
  const qos = (flags >> 1) & 0x03;
  const topic = reader.prefixed();
  if (!topic) return undefined;
  const packetId = qos === 0 ? undefined : reader.uint16();
  if (qos > 0 && packetId === undefined) return undefined;
  if (level === MQTT5 && !reader.skipProperties()) return undefined;
  return { qos, topic, packetId, properties: reader.propertyBlocks };
}

export interface SubscribeFields {
  packetId: number;
  filters: Buffer[];
  /** The byte after each filter: the requested QoS and reserved bits. */
  options: number[];
  /** The MQTT 5 property block, unread; none before MQTT 5. */
  properties: Buffer[];
}

export function readSubscribe(body: Buffer, level: number): SubscribeFields | undefined {
  const reader = new FieldReader(body);
  const packetId = reader.uint16();
  if (packetId === undefined) return undefined;
  if (level === MQTT5 && !reader.skipProperties()) return undefined;
  const filters: Buffer[] = [];
  const options: number[] = [];
  while (reader.remaining > 0) {
    const filter = reader.prefixed();
    const option = reader.byte();
    if (!filter || option === undefined) return undefined;
    filters.push(filter);
    options.push(option);
  }
  return { packetId, filters, options, properties: reader.propertyBlocks };
}

export interface UnsubscribeFields {
  packetId: number;
  filters: Buffer[];
  /** The MQTT 5 property block, unread; none before MQTT 5. */
  properties: Buffer[];
}

export function readUnsubscribe(body: Buffer, level: number): UnsubscribeFields | undefined {
  const reader = new FieldReader(body);
  const packetId = reader.uint16();
  if (packetId === undefined) return undefined;
  if (level === MQTT5 && !reader.skipProperties()) return undefined;
  const filters: Buffer[] = [];
  while (reader.remaining > 0) {
    const filter = reader.prefixed();
    if (!filter) return undefined;
    filters.push(filter);
  }
  return { packetId, filters, properties: reader.propertyBlocks };
}

/** MQTT 5's reason code 0x87, Not authorized. */
export const NOT_AUTHORIZED = 0x87;

/** The Reason String of a publication the topic rules refuse, whether the gate or Aedes refuses it. */
export const PUBLISH_NOT_AUTHORIZED = 'not authorized to publish to this topic';

/** `value` as a variable byte integer [MQTT-1.5.5-1]. */
function variableByteInteger(value: number): number[] {
  const bytes: number[] = [];
  do {
    const low = value % 128;
    value = Math.floor(value / 128);
    bytes.push(value > 0 ? low | 0x80 : low);
  } while (value > 0);
  return bytes;
}

/** A property block with its length in front, as a packet carries it. */
function withLength(properties: Buffer): Buffer {
  return Buffer.concat([Buffer.from(variableByteInteger(properties.length)), properties]);
}

/**
 * An acknowledgment (PUBACK, PUBREC, PUBREL, PUBCOMP) for `packetId`, as bytes; with `reasonCode`
 * (MQTT 5 only) the acknowledgment carries it, and `properties` after it, success without.
 */
export function acknowledgment(
  type: number,
  packetId: number,
  reasonCode?: number,
  properties?: Buffer,
): Buffer {
  const flags = type === PacketType.PUBREL ? 0x02 : 0x00;
  if (reasonCode === undefined) return Buffer.from([(type << 4) | flags, 2, packetId >> 8, packetId & 0xff]);
  const body = Buffer.concat([
    Buffer.from([packetId >> 8, packetId & 0xff, reasonCode]),
    properties ? withLength(properties) : Buffer.alloc(0),
  ]);
  return Buffer.concat([Buffer.from([(type << 4) | flags, ...variableByteInteger(body.length)]), body]);
}

/** The MQTT 5 reason code of each MQTT 3.1.1 CONNACK return code. */
const CONNACK_REASON_CODES: Record<number, number> = { 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87 };

/**
 * A CONNACK refusing the connection with `returnCode`, in the form of protocol `level`; on MQTT 5
 * with `properties` (its Reason String), which a CONNACK may carry whatever the client asked [MQTT-3.1.2-29].
 */
export function connackRefusal(returnCode: number, level = 4, properties?: Buffer): Buffer {
  if (level !== MQTT5) return Buffer.from([PacketType.CONNACK << 4, 2, 0, returnCode]);
  // The session present flag, the reason code, the properties [MQTT-3.2.2-6].
  const body = Buffer.concat([
    Buffer.from([0, CONNACK_REASON_CODES[returnCode] ?? 0x80]),
    withLength(properties ?? Buffer.alloc(0)),
  ]);
  return Buffer.concat([Buffer.from([PacketType.CONNACK << 4, ...variableByteInteger(body.length)]), body]);
}
