/**
 * What a retained payload looks like in the monitor: JSON or text when it is UTF-8, hexadecimal
 * otherwise; never more than PREVIEW_BYTES of it.
 */
import { PREVIEW_BYTES, type RetainedMessageView } from '../../lib/monitor-protocol.js';

type Preview = NonNullable<RetainedMessageView['preview']>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The first `PREVIEW_BYTES` of `payload`, cut before a UTF-8 sequence rather than inside it. */
function head(payload: Buffer): Buffer {
  if (payload.length <= PREVIEW_BYTES) return payload;
  let end = PREVIEW_BYTES;
  // Back over continuation bytes (10xxxxxx) to the start of the sequence the cut falls in.
  while (end > PREVIEW_BYTES - 4 && end > 0 && (payload[end] & 0xc0) === 0x80) end--;
  return payload.subarray(0, end);
}

export function previewOf(payload: Buffer): Preview {
  const truncated = payload.length > PREVIEW_BYTES;
  const shown = head(payload);
  let text: string | undefined;
  try {
    text = utf8.decode(shown);
  } catch {
    text = undefined;
  }
  // Control characters other than tab and line breaks make a binary payload, whatever decodes.
  // eslint-disable-next-line no-control-regex
  if (text === undefined || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text))
    return { kind: 'hex', text: payload.subarray(0, PREVIEW_BYTES).toString('hex'), truncated };
  // An object or a list: a number or a word is text, however valid as JSON.
  if (!truncated && /^\s*[[{]/.test(text)) {
    try {
      JSON.parse(text);
      return { kind: 'json', text, truncated };
    } catch {
      // Text, then.
    }
  }
  return { kind: 'text', text, truncated };
}
