/** Conversions between Node-RED `msg.payload` values and MQTT payload bytes. */
import { isUtf8 } from 'node:buffer';

export type Datatype = 'auto-detect' | 'utf8' | 'buffer' | 'json' | 'base64';
export const DATATYPES: readonly Datatype[] = ['auto-detect', 'utf8', 'buffer', 'json', 'base64'];

export class PayloadError extends Error {
  constructor(
    readonly code: 'invalid-json' | 'unserialisable',
    message: string,
  ) {
    super(message);
    this.name = 'PayloadError';
  }
}

/**
 * The bytes to publish for a payload: a Buffer as is, a string as UTF-8,
 * a number or boolean as text, null/undefined as an empty payload, anything else as JSON.
 */
export function encodePayload(payload: unknown): Buffer | string {
  if (Buffer.isBuffer(payload) || typeof payload === 'string') return payload;
  if (payload === null || payload === undefined) return '';
  if (typeof payload === 'number' || typeof payload === 'boolean' || typeof payload === 'bigint')
    return String(payload);
  if (payload instanceof Uint8Array)
    return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  try {
    const json = JSON.stringify(payload);
    if (json === undefined) throw new Error(`a ${typeof payload} has no JSON form`);
    return json;
  } catch (error) {
    throw new PayloadError('unserialisable', (error as Error).message);
  }
}

/** The most bytes an MQTT packet carries after its fixed header [MQTT-2.2.3]. */
const MAX_REMAINING_LENGTH = 268_435_455;

/**
 * Whether a PUBLISH of `payload` to `topic` fits in one MQTT packet (MQTT 5
 * properties aside; a packet identifier counted whatever the QoS). One that
 * does not would make MQTT.js drop the connection, then resend it at every reconnect.
 */
export function publishFits(topic: string, payload: Buffer | string): boolean {
  // A UTF-16 code unit takes at most 3 bytes in UTF-8: most messages fit without counting them.
  if ((topic.length + payload.length) * 3 + 4 <= MAX_REMAINING_LENGTH) return true;
  const length = 2 + Buffer.byteLength(topic) + 2 + Buffer.byteLength(payload);
  return length <= MAX_REMAINING_LENGTH;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text when they are valid UTF-8, else undefined. */
export function strictUtf8(bytes: Buffer): string | undefined {
  // Checked first: the decoder's throw on invalid bytes costs about 80 times the check, per binary payload.
  return isUtf8(bytes) ? utf8Decoder.decode(bytes) : undefined;
}

/** Whether text may be JSON, checked before paying for JSON.parse. */
function looksLikeJson(text: string): boolean {
  const first = text.trimStart().charCodeAt(0);
  // '{', '[', '"', '-', digits, 't'rue, 'f'alse, 'n'ull
  return (
    first === 123 ||
    first === 91 ||
    first === 34 ||
    first === 45 ||
    (first >= 48 && first <= 57) ||
    first === 116 ||
    first === 102 ||
    first === 110
  );
}

/**
 * Why JSON.parse failed, without the text it quotes: V8 puts the start of the
 * input in its message ('Unexpected token …, "…" is not valid JSON'), and an
 * error ends up in the log, where a private payload must not.
 */
function jsonFailure(error: Error): string {
  const position = /at position (\d+)/.exec(error.message)?.[1];
  if (position !== undefined) return `error at position ${position}`;
  return error.message.startsWith('Unexpected end') ? 'unexpected end' : 'unexpected character';
}

/** The `msg.payload` for received bytes; throws PayloadError for invalid JSON with datatype `json`. */
export function decodePayload(bytes: Buffer, datatype: Datatype): unknown {
  switch (datatype) {
    case 'buffer':
      return bytes;
    case 'utf8':
      return bytes.toString('utf8');
    case 'base64':
      return bytes.toString('base64');
    case 'json': {
      const text = bytes.toString('utf8');
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new PayloadError('invalid-json', jsonFailure(error as Error));
      }
    }
    case 'auto-detect': {
      const text = strictUtf8(bytes);
      if (text === undefined) return bytes;
      if (looksLikeJson(text)) {
        try {
          return JSON.parse(text);
        } catch {
          // Not JSON after all: the text is the payload.
        }
      }
      return text;
    }
  }
}
