import { existsSync } from 'node:fs';
import type { PublishingConnection } from '../connection/types.js';
import { DurablePublisher } from './durable-publisher.js';
import { LevelOutboxStore } from './level-store.js';

/**
 * What an out node left in its outbox in a persistent mode and finds there after it was switched
 * to `none`. Those messages were accepted (their done() said so), so they are delivered as before,
 * oldest first; once none is left, the outbox is removed from the disk. The node draws the count.
 */
export class LeftoverOutbox {
  private removal: Promise<void> | undefined;

  private constructor(
    private readonly publisher: DurablePublisher<never>,
    /** Messages it held when it was found. */
    readonly found: number,
    private readonly onDrained: (error?: Error) => void,
  ) {
    publisher.on('changed', () => this.removeOnceEmpty());
  }

  /**
   * Opens the outbox in `directory` when there is one. An empty one is removed at once and gives
   * undefined, as does a missing one; `onDrained` is called once the last message has left.
   */
  static async open(
    directory: string,
    connection: PublishingConnection,
    onDrained: (error?: Error) => void,
  ): Promise<LeftoverOutbox | undefined> {
    if (!existsSync(directory)) return undefined;
    // No live message (`never`): every message in it was accepted by an earlier run.
    const publisher = await DurablePublisher.open<never>({
      store: new LevelOutboxStore(directory),
      // Nothing new is appended: the bounds only matter to appends.
      limits: { maxMessages: Infinity, maxBytes: Infinity, overflow: 'rejectNew' },
      connection,
    });
    if (publisher.queued === 0) {
      await publisher.close(true);
      return undefined;
    }
    return new LeftoverOutbox(publisher, publisher.queued, onDrained);
  }

  /** Messages still waiting. */
  get left(): number {
    return this.publisher.queued;
  }

  /** The event each message's fate is told by, as for a node's own outbox. */
  get events(): DurablePublisher<never> {
    return this.publisher;
  }

  /**
   * Stops delivering. With `discard` (the node was deleted) the messages are deleted too;
   * otherwise they stay for the next start. Resolves with the number left.
   */
  async close(discard: boolean): Promise<number> {
    if (this.removal) {
      await this.removal;
      return 0;
    }
    return this.publisher.close(discard);
  }

  private removeOnceEmpty() {
    if (this.removal || this.publisher.queued > 0) return;
    this.removal = this.publisher.close(true).then(
      () => this.onDrained(),
      (error: Error) => this.onDrained(error),
    );
  }
}
