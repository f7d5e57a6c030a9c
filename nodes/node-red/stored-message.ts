import type { NodeMessage } from 'node-red';
import { unwrapEnvelope } from '../lib/end-to-end-id.js';

/**
 * Marks a stored msg whose payload is the Buffer it was published with: the record
 * holds those bytes already, and Buffer's JSON (an array of numbers) costs more than
 * the rest of the msg.
 */
const PAYLOAD_IN_RECORD = '_durableMqttPayloadInRecord';
/** Marks a stored msg whose Buffer payload the record holds inside its message-id envelope (MQTT 3.1.1). */
const PAYLOAD_IN_ENVELOPE = '_durableMqttPayloadInEnvelope';

/**
 * The msg as JSON, kept with an acknowledged message so its receipt can carry it
 * even after a restart. Buffers survive (as Node's {type: 'Buffer', data}); what
 * JSON cannot hold (a circular msg, an HTTP response object) is left out. A Buffer
 * payload that the record holds as it is (`recordPayload`), or wrapped in its envelope
 * (`wrappedPayload`: the bytes the envelope holds), is taken back from the record (see parseStoredMessage).
 */
export function storableMessage(
  msg: object,
  recordPayload: Buffer,
  wrappedPayload?: Buffer | string,
): string | undefined {
  const payload = (msg as NodeMessage).payload;
  let stored = msg;
  const marker =
    payload === recordPayload
      ? PAYLOAD_IN_RECORD
      : payload !== undefined && payload === wrappedPayload && Buffer.isBuffer(payload)
        ? PAYLOAD_IN_ENVELOPE
        : undefined;
  if (marker) {
    // A copy by a plain loop: less than half what a spread with a computed key costs, per acknowledged message.
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(msg))
      if (key !== 'payload') copy[key] = (msg as Record<string, unknown>)[key];
    copy[marker] = true;
    stored = copy;
  }
  try {
    return JSON.stringify(stored);
  } catch {
    const { topic, _msgid } = msg as NodeMessage;
    try {
      return JSON.stringify({ _msgid, topic, payload });
    } catch {
      return JSON.stringify({ _msgid, topic });
    }
  }
}

/** The msg storableMessage kept; `payload` is the record's, for a msg whose payload was that Buffer or in it. */
export function parseStoredMessage(stored: string | undefined, payload: Buffer): NodeMessage | undefined {
  if (stored === undefined) return undefined;
  const msg = JSON.parse(stored, (_key, value: unknown) => {
    const candidate = value as { type?: unknown; data?: unknown } | null;
    return candidate && candidate.type === 'Buffer' && Array.isArray(candidate.data)
      ? Buffer.from(candidate.data)
      : value;
  }) as NodeMessage & { [PAYLOAD_IN_RECORD]?: boolean; [PAYLOAD_IN_ENVELOPE]?: boolean };
  if (msg[PAYLOAD_IN_RECORD]) {
    Reflect.deleteProperty(msg, PAYLOAD_IN_RECORD);
    msg.payload = payload;
  } else if (msg[PAYLOAD_IN_ENVELOPE]) {
    Reflect.deleteProperty(msg, PAYLOAD_IN_ENVELOPE);
    msg.payload = unwrapEnvelope(payload)?.payload ?? payload;
  }
  return msg;
}
