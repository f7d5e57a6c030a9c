import type { NodeMessage } from 'node-red';

/**
 * The msg as JSON, kept with an acknowledged message so its receipt can carry it
 * even after a restart. Buffers survive (as Node's {type: 'Buffer', data}); what
 * JSON cannot hold (a circular msg, an HTTP response object) is left out.
 */
export function storableMessage(msg: object): string | undefined {
  try {
    return JSON.stringify(msg);
  } catch {
    const { topic, payload, _msgid } = msg as NodeMessage;
    try {
      return JSON.stringify({ _msgid, topic, payload });
    } catch {
      return JSON.stringify({ _msgid, topic });
    }
  }
}

export function parseStoredMessage(stored: string | undefined): NodeMessage | undefined {
  if (stored === undefined) return undefined;
  return JSON.parse(stored, (_key, value: unknown) => {
    const candidate = value as { type?: unknown; data?: unknown } | null;
    return candidate && candidate.type === 'Buffer' && Array.isArray(candidate.data)
      ? Buffer.from(candidate.data)
      : value;
  }) as NodeMessage;
}
