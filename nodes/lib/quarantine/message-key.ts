import { createHash } from 'node:crypto';

/** What the delivery counts need of a received MQTT message. */
export interface ReceivedMessage {
  /** The end-to-end message id it carries, if any (msg.messageId). */
  messageId: string | undefined;
  topic: string;
  payload: Buffer;
  /** The DUP flag: the broker may have sent this message before. */
  dup: boolean;
  /** The RETAIN flag: a stored message, sent again on every new subscription. */
  retain: boolean;
}

export interface MessageKey {
  /** The key the delivery counts are kept under. */
  key: string;
  /** Whether this delivery is a new message whose count starts at 1 (`begin`'s `fresh`). */
  fresh: boolean;
}

/** Longest id kept as it is (as lib/end-to-end-id.ts accepts); a longer one is hashed, so keys stay small. */
const MAX_PLAIN_ID = 128;

/**
 * The key of a received message and whether its delivery is fresh.
 *
 * With a message id: `id:<id>`; every copy of the message has the same id, so its
 * deliveries always count together (never fresh).
 * Without one: `hash:<the first 32 hex digits of SHA-256(topic, 0x00, payload)>`.
 * Two different messages with the same topic and payload then share a key, so a
 * delivery is fresh (its count restarts at 1) when nothing says it was sent
 * before: DUP clear, and RETAIN clear too, since a retained message comes again,
 * DUP clear, each time the subscription is made, e.g. after every restart; it
 * must keep its count or a retained message that kills the process would do so
 * for ever. A quarantined key stays quarantined whether the delivery is fresh or not.
 */
export function messageKey(message: ReceivedMessage): MessageKey {
  const { messageId } = message;
  if (messageId !== undefined && messageId !== '') {
    const key =
      messageId.length <= MAX_PLAIN_ID
        ? `id:${messageId}`
        : `id#${sha256Hex32(Buffer.from(messageId, 'utf8'))}`;
    return { key, fresh: false };
  }
  const key = `hash:${sha256Hex32(Buffer.from(message.topic, 'utf8'), Buffer.of(0), message.payload)}`;
  return { key, fresh: !message.dup && !message.retain };
}

function sha256Hex32(...parts: Buffer[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex').slice(0, 32);
}
