/**
 * What MQTT 3.1.1 says a server must refuse, checked on the raw packet before
 * Aedes sees it: mqtt-packet, the parser under Aedes, lets these through.
 * One function per group of rules; each returns the broken rule, or undefined.
 * The statement numbers are those of the OASIS MQTT 3.1.1 specification; where
 * MQTT 5 differs (the `level` arguments), its own rules are Aedes' to check.
 */
import { isUtf8 } from 'node:buffer';
import { filterProblem } from '../topic.js';
import { propertiesProblem } from './mqtt5-properties.js';
import {
  ConnectFlag,
  MQTT5,
  PacketType,
  type ConnectFields,
  type PublishFields,
  type SubscribeFields,
  type UnsubscribeFields,
} from './mqtt-frames.js';

export interface Violation {
  /** The normative statement broken ("MQTT-1.5.3-1"), or the section where none is numbered ("3.4.1"). */
  rule: string;
  reason: string;
  /** When set, the server answers this CONNACK return code before closing, rather than closing outright. */
  connackCode?: number;
}

function violation(rule: string, reason: string, connackCode?: number): Violation {
  return connackCode === undefined ? { rule, reason } : { rule, reason, connackCode };
}

/** A UTF-8 encoded string field [MQTT-1.5.3-1] [MQTT-1.5.3-2]. */
export function stringViolation(bytes: Buffer, field: string): Violation | undefined {
  // isUtf8 refuses ill-formed sequences, overlong forms and encoded surrogates (U+D800 to U+DFFF).
  if (!isUtf8(bytes)) return violation('MQTT-1.5.3-1', `${field} is not well-formed UTF-8`);
  if (bytes.includes(0)) return violation('MQTT-1.5.3-2', `${field} contains U+0000`);
  return undefined;
}

/**
 * Control characters, U+0001 to U+001F and U+007F to U+009F, in a UTF-8 field: MQTT allows them
 * (1.5.3), Mosquitto refuses them, and the broker does too when told to (BrokerLimits).
 */
export function controlCharacterViolation(bytes: Buffer, field: string): Violation | undefined {
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    // U+0080 to U+009F are encoded C2 80 to C2 9F; a lone 80 to 9F byte continues another character.
    const control =
      byte < 0x20 || byte === 0x7f || (byte === 0xc2 && bytes[i + 1] >= 0x80 && bytes[i + 1] <= 0x9f);
    if (control && byte !== 0)
      return violation('option: refuse control characters', `${field} holds a control character`);
  }
  return undefined;
}

/** MQTT 5 properties: known identifiers, each once but User Property, within their block (2.2.2.2). */
function propertiesViolation(blocks: Buffer[]): Violation | undefined {
  for (const block of blocks) {
    const problem = propertiesProblem(block);
    if (problem) return violation('2.2.2.2', problem);
  }
  return undefined;
}

/** The packet types a client may send; the others are the server's, or reserved [MQTT-2.2.1]. */
const CLIENT_PACKETS = new Set<number>([
  PacketType.CONNECT,
  PacketType.PUBLISH,
  PacketType.PUBACK,
  PacketType.PUBREC,
  PacketType.PUBREL,
  PacketType.PUBCOMP,
  PacketType.SUBSCRIBE,
  PacketType.UNSUBSCRIBE,
  PacketType.PINGREQ,
  PacketType.DISCONNECT,
]);

export function packetTypeViolation(type: number): Violation | undefined {
  return CLIENT_PACKETS.has(type)
    ? undefined
    : violation('MQTT-4.8.0-1', `packet type ${type} is not one a client sends`);
}

/** The fixed-header flags each packet type must carry [MQTT-2.2.2-1]; PUBLISH's carry DUP, QoS and RETAIN. */
const FIXED_FLAGS = new Map<number, number>([
  [PacketType.PUBREL, 0x02],
  [PacketType.SUBSCRIBE, 0x02],
  [PacketType.UNSUBSCRIBE, 0x02],
]);

/**
 * What a packet's first byte alone says is wrong: judged as soon as that byte arrives, so a
 * client announcing a bad packet is closed at once instead of after sending the whole of it.
 */
export function firstByteViolation(firstByte: number): Violation | undefined {
  const type = firstByte >> 4;
  const flags = firstByte & 0x0f;
  const typeProblem = packetTypeViolation(type);
  if (typeProblem) return typeProblem;
  if (type === PacketType.PUBLISH) {
    const qos = (flags >> 1) & 0x03;
    if (qos === 3) return violation('MQTT-3.3.1-4', 'a PUBLISH with QoS 3');
    if (qos === 0 && flags & 0x08) return violation('MQTT-3.3.1-2', 'a QoS 0 PUBLISH with DUP set');
    return undefined;
  }
  if (flags !== (FIXED_FLAGS.get(type) ?? 0))
    return violation('MQTT-2.2.2-2', `packet type ${type} with flags ${flags.toString(2).padStart(4, '0')}`);
  return undefined;
}

/**
 * The protocol level, before anything else of a CONNECT: a level other than
 * 3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5 gets CONNACK 1 [MQTT-3.1.2-2], which
 * mqtt-packet does not give for levels it does not know (it closes).
 */
export function protocolLevelViolation(level: number): Violation | undefined {
  return level === 3 || level === 4 || level === MQTT5
    ? undefined
    : violation('MQTT-3.1.2-2', `protocol level ${level} is not supported`, 1);
}

export function connectViolation(connect: ConnectFields): Violation | undefined {
  const { flags } = connect;
  const properties = propertiesViolation(connect.properties);
  if (properties) return properties;
  if (flags & ConnectFlag.WILL && connect.willQos === 3)
    return violation('MQTT-3.1.2-14', 'the will QoS is 3');
  // MQTT 5 allows a password without a user name (3.1.2.9).
  if (connect.level !== MQTT5 && !(flags & ConnectFlag.USERNAME) && flags & ConnectFlag.PASSWORD)
    return violation('MQTT-3.1.2-22', 'a password flag without a user name flag');
  if (connect.trailingBytes > 0) {
    // Fields the flags do not announce: a user name [MQTT-3.1.2-18] or a password [MQTT-3.1.2-20].
    const rule = flags & ConnectFlag.USERNAME ? 'MQTT-3.1.2-20' : 'MQTT-3.1.2-18';
    return violation(rule, `${connect.trailingBytes} bytes after the last field the flags announce`);
  }
  const clientId = stringViolation(connect.clientId, 'the client id');
  if (clientId) return clientId;
  if (connect.willTopic) {
    const willTopic = stringViolation(connect.willTopic, 'the will topic');
    if (willTopic) return willTopic;
  }
  if (connect.username) {
    const username = stringViolation(connect.username, 'the user name');
    if (username) return username;
  }
  // MQTT 3.1 has no server-assigned id: its client id is 1 to 23 characters (MQTT 3.1, 3.1 CONNECT, Payload).
  if (connect.level === 3 && connect.clientId.length === 0)
    return violation('MQTT 3.1: 3.1', 'an empty client id on MQTT 3.1', 2);
  // MQTT 5 gives such a client an id of the server's choosing (3.1.3.1).
  if (connect.level !== MQTT5 && connect.clientId.length === 0 && !(flags & ConnectFlag.CLEAN_SESSION))
    return violation('MQTT-3.1.3-8', 'an empty client id with clean session 0', 2);
  return undefined;
}

export function publishViolation(publish: PublishFields): Violation | undefined {
  if (publish.packetId === 0)
    return violation('MQTT-2.3.1-1', 'PUBLISH with QoS > 0 and packet identifier 0');
  return propertiesViolation(publish.properties) ?? stringViolation(publish.topic, 'the topic name');
}

/**
 * Wildcards: `#` alone in the last level [MQTT-4.7.1-2], `+` alone in its
 * level [MQTT-4.7.1-3]. Aedes 1.2 checks them but lets `x+/y` through.
 */
export function filterSyntaxViolation(filter: string): Violation | undefined {
  const problem = filterProblem(filter);
  if (problem === undefined) return undefined;
  if (problem === 'empty') return violation('MQTT-4.7.3-1', 'an empty topic filter');
  // A group name of one character at least [MQTT-4.8.2-1], without `+` or `#`, and a filter after it [MQTT-4.8.2-2].
  if (problem === 'bad-shared-subscription')
    return violation(
      filter.startsWith('$share//') ? 'MQTT-4.8.2-1' : 'MQTT-4.8.2-2',
      'a shared subscription not of the form $share/<group>/<filter>',
    );
  const hashMisplaced = filter
    .split('/')
    .some((level, i, levels) => level.includes('#') && (level !== '#' || i < levels.length - 1));
  return violation(
    hashMisplaced ? 'MQTT-4.7.1-2' : 'MQTT-4.7.1-3',
    `the topic filter is malformed (${problem})`,
  );
}

function filtersViolation(
  kind: string,
  { packetId, filters, properties }: { packetId: number; filters: Buffer[]; properties: Buffer[] },
  rule: string,
): Violation | undefined {
  if (packetId === 0) return violation('MQTT-2.3.1-1', `${kind} with packet identifier 0`);
  const propertiesProblem = propertiesViolation(properties);
  if (propertiesProblem) return propertiesProblem;
  if (filters.length === 0) return violation(rule, `${kind} without a topic filter`);
  for (const filter of filters) {
    const problem =
      stringViolation(filter, 'a topic filter') ?? filterSyntaxViolation(filter.toString('utf8'));
    if (problem) return problem;
  }
  return undefined;
}

/** The No Local option of a subscription (MQTT 5; a reserved bit, 0, before) [MQTT-3.8.3-3]. */
const NO_LOCAL = 0x04;

export function subscribeViolation(subscribe: SubscribeFields): Violation | undefined {
  const problem = filtersViolation('SUBSCRIBE', subscribe, 'MQTT-3.8.3-3');
  if (problem) return problem;
  for (const [i, filter] of subscribe.filters.entries()) {
    if (subscribe.options[i] & NO_LOCAL && filter.toString('utf8').startsWith('$share/'))
      return violation('MQTT-3.8.3-4', 'No Local on a shared subscription');
  }
  return undefined;
}

export function unsubscribeViolation(unsubscribe: UnsubscribeFields): Violation | undefined {
  return filtersViolation('UNSUBSCRIBE', unsubscribe, 'MQTT-3.10.3-2');
}

const ACK_NAMES: Record<number, string> = {
  [PacketType.PUBACK]: 'PUBACK',
  [PacketType.PUBREC]: 'PUBREC',
  [PacketType.PUBREL]: 'PUBREL',
  [PacketType.PUBCOMP]: 'PUBCOMP',
};

/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP: a packet identifier, non-zero, and nothing else [MQTT-2.3.1-1];
 * in MQTT 5 a reason code and properties may follow it (3.4.2.1).
 */
export function acknowledgmentViolation(type: number, body: Buffer, level: number): Violation | undefined {
  const name = ACK_NAMES[type];
  if (name === undefined) return undefined;
  if (level === MQTT5) {
    if (body.length < 2) return violation(`3.${type}.1`, `${name} of remaining length ${body.length}`);
  } else if (body.length !== 2) {
    // Sections 3.4.1, 3.5.1, 3.6.1 and 3.7.1: the remaining length is 2.
    return violation(`3.${type}.1`, `${name} of remaining length ${body.length}, not 2`);
  }
  if (body.readUInt16BE(0) === 0) return violation('MQTT-2.3.1-1', `${name} with packet identifier 0`);
  return undefined;
}

/**
 * PINGREQ and DISCONNECT have no variable header and no payload [MQTT-3.12.1] [MQTT-3.14.1]; an MQTT 5
 * DISCONNECT may carry a reason code and properties (3.14.2).
 */
export function emptyPacketViolation(type: number, body: Buffer, level: number): Violation | undefined {
  if (type === PacketType.PINGREQ && body.length > 0) return violation('3.12.1', 'PINGREQ with a payload');
  if (type === PacketType.DISCONNECT && body.length > 0 && level !== MQTT5)
    return violation('3.14.1', 'DISCONNECT with a payload');
  return undefined;
}
