import { randomBytes } from 'node:crypto';

/**
 * `_msgid`s for the messages an in node creates. Node-RED makes one from eight
 * Math.random() calls per message when a node sends a msg without one, about a
 * seventh of a message's time through the in-process broker; a random prefix
 * drawn once and a counter give ids of the same shape (16 hex digits) that no
 * other message of this runtime has, for the cost of one number formatting.
 */
class FlowMessageIds {
  private prefix = '';
  private counter = 0;

  next(): string {
    // 2^32 + counter: always 9 hex digits, of which the last 8 are the counter's.
    if (this.counter === 0) this.prefix = randomBytes(4).toString('hex');
    const id = this.prefix + (0x1_0000_0000 + this.counter).toString(16).slice(1);
    // After 2^32 ids the prefix is drawn again.
    this.counter = (this.counter + 1) % 0x1_0000_0000;
    return id;
  }
}

/** One sequence for the runtime, so no two in nodes can make the same id. */
export const flowMessageIds = new FlowMessageIds();
