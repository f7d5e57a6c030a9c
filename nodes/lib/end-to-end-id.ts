import { randomFillSync } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

/**
 * The message id (msg.messageId): a message's identity end to end, across the at-least-once
 * hops. It is made once when mqtt out accepts a message and carried with it (MQTT 5 user
 * property, or a JSON envelope on MQTT 3.1.1), so every copy of the message, resends included,
 * and every flow it reaches has the same id; dedupe keys on it. Not Node-RED's `_msgid`, which
 * only lives within one runtime (node-red/msgid.ts).
 */

/** The MQTT 5 user property that carries the id. */
export const MESSAGE_ID_PROPERTY = 'msg-id';

/** Longest id accepted from msg.messageId: keys stay small in a dedupe cache. */
const MAX_MESSAGE_ID_LENGTH = 128;

const random = Buffer.alloc(4096);
let randomOffset = random.length;
let lastMs = 0;
let sequence = 0;

function randomBytes(count: number): Buffer {
  if (randomOffset + count > random.length) {
    randomFillSync(random);
    randomOffset = 0;
  }
  const bytes = random.subarray(randomOffset, randomOffset + count);
  randomOffset += count;
  return bytes;
}

/**
 * A UUIDv7 (RFC 9562): 48 bits of milliseconds, then a 12-bit sequence that
 * starts at a random value each millisecond and counts up within it (method 1),
 * then 62 random bits. Ids made by one process sort in the order they were made.
 */
export function newMessageId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    // Start in the lower half, so a millisecond has at least 2,048 ids before it borrows the next one.
    sequence = randomBytes(2).readUInt16BE(0) & 0x7ff;
  } else if (++sequence > 0xfff) {
    lastMs++;
    sequence = randomBytes(2).readUInt16BE(0) & 0x7ff;
  }
  const bytes = Buffer.allocUnsafe(16);
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes.writeUInt16BE(0x7000 | sequence, 6);
  randomBytes(8).copy(bytes, 8);
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Whether `value` can serve as a message id (from msg.messageId or a received message). */
export function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_MESSAGE_ID_LENGTH;
}

/**
 * The MQTT 3.1.1 envelope: `{"id":…,"payload":…}` with the payload as UTF-8 text,
 * or as Base64 with `"encoding":"base64"` when the bytes are not valid UTF-8, so
 * unwrapping gives back exactly the bytes that were wrapped. `reply` is the topic
 * the consuming flow's receipt goes to, when the publisher asks for one (receipt.ts).
 */
export function wrapEnvelope(id: string, payload: Buffer | string, reply?: string): Buffer {
  // Not a decoder's text: a TextDecoder drops a leading byte order mark, and unwrapping must give back every byte.
  const text = typeof payload === 'string' ? payload : isUtf8(payload) ? payload.toString('utf8') : undefined;
  const envelope: Record<string, string> =
    text === undefined
      ? { id, payload: (payload as Buffer).toString('base64'), encoding: 'base64' }
      : { id, payload: text };
  if (reply !== undefined) envelope.reply = reply;
  return Buffer.from(JSON.stringify(envelope));
}

/** What an envelope held: the id and the original bytes. */
export interface EnvelopeContents {
  id: string;
  payload: Buffer;
  /** The receipt topic, when the publisher asks for a receipt. */
  reply?: string;
}

const ENVELOPE_START = Buffer.from('{"id":');

/** The id and payload of an envelope, or undefined when `bytes` are not one (they are then a plain payload). */
export function unwrapEnvelope(bytes: Buffer): EnvelopeContents | undefined {
  // Cheap test first: most payloads that are not envelopes are told apart by their first bytes.
  if (
    bytes.length < ENVELOPE_START.length ||
    !bytes.subarray(0, ENVELOPE_START.length).equals(ENVELOPE_START)
  )
    return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const { id, payload, encoding, reply, ...rest } = parsed as Record<string, unknown>;
  if (!isMessageId(id) || typeof payload !== 'string' || Object.keys(rest).length > 0) return undefined;
  if (reply !== undefined && (typeof reply !== 'string' || reply === '')) return undefined;
  let original: Buffer;
  if (encoding === undefined) original = Buffer.from(payload, 'utf8');
  else if (encoding === 'base64') original = Buffer.from(payload, 'base64');
  else return undefined;
  return reply === undefined ? { id, payload: original } : { id, payload: original, reply };
}
