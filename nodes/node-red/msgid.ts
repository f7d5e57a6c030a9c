import { randomBytes } from 'node:crypto';

/** Two hex digits for each byte value. */
const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/**
 * Node-RED's `_msgid`, for the msgs an in node creates: the id Node-RED follows a msg by
 * within one runtime (not the message id a message carries across MQTT: lib/end-to-end-id.ts).
 * Node-RED makes one from eight Math.random() calls per message when a node sends a msg
 * without one, about a seventh of a message's time through the in-process broker; a random
 * prefix drawn once and a counter give ids of the same shape (16 hex digits) that no other
 * message of this runtime has. Only the counter's last byte changes from one id to the next:
 * its two digits come from a table, and the rest of the id is formatted once every 256 ids
 * (number formatting in base 16 costs about 200 ns, twenty times the table).
 */
class MsgIdSequence {
  private prefix = '';
  /** The prefix and the counter's upper six hex digits. */
  private head = '';
  private counter = 0;

  next(): string {
    const lastByte = this.counter & 0xff;
    if (lastByte === 0) {
      // After 2^32 ids the counter is back at 0 and the prefix is drawn again.
      if (this.counter === 0) this.prefix = randomBytes(4).toString('hex');
      this.head = this.prefix + (0x100_0000 + (this.counter >>> 8)).toString(16).slice(1);
    }
    this.counter = (this.counter + 1) >>> 0;
    return this.head + HEX_BYTES[lastByte];
  }
}

/** One sequence for the runtime, so no two in nodes can make the same id. */
const sequence = new MsgIdSequence();

/** A `_msgid` no other msg of this runtime has. */
export function nextMsgId(): string {
  return sequence.next();
}
