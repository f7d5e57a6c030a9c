/** What an outbox may hold, and what happens to a message that finds it full. */

export type OverflowPolicy = 'dropOldest' | 'rejectNew';

export interface OutboxLimits {
  maxMessages: number;
  /** Bound on the sum of payload sizes. */
  maxBytes: number;
  overflow: OverflowPolicy;
}

export class OutboxFullError extends Error {
  readonly code = 'outbox-full';
  constructor(readonly limits: OutboxLimits) {
    super('the outbox is full');
    this.name = 'OutboxFullError';
  }
}
