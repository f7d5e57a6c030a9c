import type { NodeMessage } from 'node-red';

/**
 * Marks a stored msg whose payload is the Buffer it was published with: the record
 * holds those bytes already, and Buffer's JSON (an array of numbers) costs more than
 * the rest of the msg.
 */
const PAYLOAD_IN_RECORD = '_durableMqttPayloadInRecord';

/**
 * The msg as JSON, kept with an acknowledged message so its receipt can carry it
 * even after a restart. Buffers survive (as Node's {type: 'Buffer', data}); what
 * JSON cannot hold (a circular msg, an HTTP response object) is left out. A Buffer
 * payload that the record holds as it is (`recordPayload`) is taken back from the record (see parseStoredMessage).
 */
export function storableMessage(msg: object, recordPayload: Buffer): string | undefined {
  const payload = (msg as NodeMessage).payload;
  let stored = msg;
  if (payload === recordPayload) {
    // A copy by a plain loop: less than half what a spread with a computed key costs, per acknowledged message.
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(msg))
      if (key !== 'payload') copy[key] = (msg as Record<string, unknown>)[key];
    copy[PAYLOAD_IN_RECORD] = true;
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

/** The msg storableMessage kept; `payload` is the record's, for a msg whose payload was that Buffer. */
export function parseStoredMessage(stored: string | undefined, payload: Buffer): NodeMessage | undefined {
  if (stored === undefined) return undefined;
  const msg = JSON.parse(stored, (_key, value: unknown) => {
    const candidate = value as { type?: unknown; data?: unknown } | null;
    return candidate && candidate.type === 'Buffer' && Array.isArray(candidate.data)
      ? Buffer.from(candidate.data)
      : value;
  }) as NodeMessage & { [PAYLOAD_IN_RECORD]?: boolean };
  if (!msg[PAYLOAD_IN_RECORD]) return msg;
  Reflect.deleteProperty(msg, PAYLOAD_IN_RECORD);
  msg.payload = payload;
  return msg;
}
