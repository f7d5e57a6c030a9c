import { SeenCache, type SeenCacheLimits, type SeenEntry } from './seen-cache.js';
import type { SeenStore } from './seen-store.js';
import { pendingCommit, type PendingCommit } from '../pending-commit.js';

/** What `check` says of one message. */
export interface Verdict {
  duplicate: boolean;
  /** When the first copy arrived (ms since the epoch). */
  firstSeenAt: number;
  /** Copies seen, this one included. */
  count: number;
}

/** Changes waiting for the next write: the latest state of each key touched (null: forget it). */
interface PendingWrite extends PendingCommit {
  clear: boolean;
  changes: Map<string, SeenEntry | null>;
}

function pendingWrite(): PendingWrite {
  return { clear: false, changes: new Map(), ...pendingCommit() };
}

/**
 * Tells first copies from duplicates with a bounded cache of the keys seen, and,
 * given a store, mirrors the cache to it. Writes are group committed: whatever
 * changes while one write is on its way to the disk goes in the next one, each key
 * once with its latest state, so the disk costs one fsync per batch, not per message.
 */
export class Deduplicator {
  private pending = pendingWrite();
  private writing: Promise<void> | undefined;
  /** The batch being written, for a caller with nothing newer pending. */
  private inFlight: PendingWrite | undefined;
  private closed = false;
  /** Keys of first copies whose flow has not finished yet: kept off the disk until keep(). */
  private readonly unfinished = new Set<string>();
  readonly cache: SeenCache;

  private constructor(
    limits: SeenCacheLimits,
    private readonly store: SeenStore | undefined,
  ) {
    this.cache = new SeenCache(limits, (key) => {
      if (this.store) this.pending.changes.set(key, null);
    });
  }

  /** A deduplicator with the keys `store` kept (restored in last-sighting order, expired ones dropped). */
  static async open(limits: SeenCacheLimits, store?: SeenStore, now = Date.now()): Promise<Deduplicator> {
    const deduplicator = new Deduplicator(limits, store);
    if (store) {
      const records = await store.open();
      records.sort((a, b) => a.entry.lastSeenAt - b.entry.lastSeenAt);
      for (const { key, entry } of records) deduplicator.cache.restore(key, entry, now);
      // What the restore dropped (expired, or beyond a lowered bound) leaves the disk too.
      if (deduplicator.pending.changes.size > 0) void deduplicator.committed().catch(() => undefined);
    }
    return deduplicator;
  }

  get size(): number {
    return this.cache.size;
  }

  get persistent(): boolean {
    return this.store !== undefined;
  }

  /**
   * Counts a copy of `key` and says whether it is the first one the window and bound remember.
   * With `untilFinished`, a first copy's key reaches the disk only through keep() (or leaves
   * through forget()), once the flow has finished with the message.
   */
  check(key: string, now = Date.now(), untilFinished = false): Verdict {
    const entry = this.cache.see(key, now);
    if (untilFinished && entry.count === 1) this.unfinished.add(key);
    else if (this.store && !this.unfinished.has(key)) this.pending.changes.set(key, entry);
    return { duplicate: entry.count > 1, firstSeenAt: entry.firstSeenAt, count: entry.count };
  }

  /** The flow finished with the first copy of `key`: resolves once its key is on disk. */
  keep(key: string): Promise<void> {
    this.unfinished.delete(key);
    const entry = this.cache.peek(key, Date.now());
    if (this.store && entry) this.pending.changes.set(key, entry);
    return this.committed();
  }

  /** The flow failed with the first copy of `key`: forgotten, so the copy sent again passes. */
  forget(key: string): void {
    this.unfinished.delete(key);
    this.cache.delete(key);
  }

  /** Resolves once everything `check` and `reset` did so far is on disk; at once without a store. */
  committed(): Promise<void> {
    if (!this.store) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('the seen-set is closed'));
    const batch = this.pending;
    if (batch.changes.size === 0 && !batch.clear) return this.inFlight?.committed ?? Promise.resolve();
    this.writing ??= this.writeLoop();
    return batch.committed;
  }

  /** Forgets every key, on disk too. */
  reset(): Promise<void> {
    this.cache.clear();
    if (!this.store) return Promise.resolve();
    this.pending.changes.clear();
    this.pending.clear = true;
    return this.committed();
  }

  /** Writes what is pending and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    // What is pending is written first; a failed write is given up, as the node is going.
    await this.committed().catch(() => {});
    await this.writing;
    this.closed = true;
    await this.store?.close();
  }

  /** Deletes the stored seen-set (the node was deleted). */
  async destroy(): Promise<void> {
    this.closed = true;
    await this.writing?.catch(() => undefined);
    await this.store?.destroy();
  }

  private async writeLoop(): Promise<void> {
    // Let the messages of this tick join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const store = this.store as SeenStore;
    while (this.pending.changes.size > 0 || this.pending.clear) {
      const batch = this.pending;
      this.pending = pendingWrite();
      this.inFlight = batch;
      const put = [];
      const del = [];
      for (const [key, entry] of batch.changes) {
        if (entry)
          put.push({
            key,
            entry: { firstSeenAt: entry.firstSeenAt, lastSeenAt: entry.lastSeenAt, count: entry.count },
          });
        else del.push(key);
      }
      try {
        await store.write({ clear: batch.clear, put, del, sync: true });
        batch.resolve();
      } catch (error) {
        // Every waiter hears of the failure; the changes stay for the next write, unless a newer
        // state of the key has replaced them since.
        const next = this.pending;
        for (const [key, entry] of batch.changes) if (!next.changes.has(key)) next.changes.set(key, entry);
        batch.reject(error as Error);
        next.reject(error as Error);
        this.pending = { ...pendingWrite(), changes: next.changes, clear: next.clear || batch.clear };
        break;
      }
    }
    this.inFlight = undefined;
    this.writing = undefined;
  }
}
