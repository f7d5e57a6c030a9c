/** What is remembered of one key. */
export interface SeenEntry {
  /** Milliseconds since the epoch when the first copy arrived. */
  firstSeenAt: number;
  /** When the latest copy arrived: the window runs from here. */
  lastSeenAt: number;
  /** Copies seen, the first one included. */
  count: number;
}

export interface SeenCacheLimits {
  /** Most keys remembered; the least recently seen goes first. */
  maxEntries: number;
  /** Milliseconds a key is remembered after its latest copy; 0: no time limit. */
  windowMs: number;
}

/** Why a key was forgotten, for the store that mirrors the cache. */
export type ForgetReason = 'evicted' | 'expired';

/** An entry in the cache's list, from least to most recently seen. */
interface Node extends SeenEntry {
  key: string;
  older: Node | undefined;
  newer: Node | undefined;
}

/**
 * The keys seen recently, bounded in count and time: a Map from key to entry,
 * and the entries in a doubly linked list ordered by last sighting. A key seen
 * again moves to the newest end, so the least recently seen key, the first to be
 * evicted, and the first to expire are all at the oldest end. Every operation is
 * O(1) (expiry amortised: each key expires once). A linked list rather than the
 * Map's own insertion order: V8 leaves deleted Map entries as holes that every
 * new iterator walks past, which made "the oldest key" cost O(maxEntries).
 */
export class SeenCache {
  private readonly entries = new Map<string, Node>();
  private oldest: Node | undefined;
  private newest: Node | undefined;

  constructor(
    private readonly limits: SeenCacheLimits,
    /** Told of every key the cache drops by itself, so a store can drop it too. */
    private readonly onForget: (key: string, reason: ForgetReason) => void = () => {},
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Records a copy of `key` seen at `now` and returns its entry: `count` 1 for a
   * first sighting, more for a duplicate. The entry is the cache's own: copy what is kept.
   */
  see(key: string, now: number): SeenEntry {
    this.expire(now);
    const node = this.entries.get(key);
    if (node) {
      node.count++;
      node.lastSeenAt = now;
      this.unlink(node);
      this.append(node);
      return node;
    }
    return this.insert(key, now, now, 1);
  }

  /** The entry of `key` if it is remembered at `now`, without counting a sighting. */
  peek(key: string, now: number): SeenEntry | undefined {
    const node = this.entries.get(key);
    return node && !this.isExpired(node, now) ? node : undefined;
  }

  /**
   * Puts back an entry kept from before (a restart), in last-sighting order: call
   * in ascending `lastSeenAt`. Expired entries and those beyond the bound are forgotten.
   */
  restore(key: string, entry: SeenEntry, now: number): void {
    if (this.isExpired(entry, now)) {
      this.onForget(key, 'expired');
      return;
    }
    const existing = this.entries.get(key);
    if (existing) this.remove(existing);
    this.insert(key, entry.firstSeenAt, entry.lastSeenAt, entry.count);
  }

  /** Forgets `key`: its next copy is a first sighting again. */
  delete(key: string): void {
    const node = this.entries.get(key);
    if (node) this.remove(node);
  }

  clear(): void {
    this.entries.clear();
    this.oldest = this.newest = undefined;
  }

  /** Drops the keys whose window has passed: they are at the oldest end. */
  expire(now: number): void {
    if (this.limits.windowMs <= 0) return;
    while (this.oldest && this.isExpired(this.oldest, now)) {
      const key = this.oldest.key;
      this.remove(this.oldest);
      this.onForget(key, 'expired');
    }
  }

  /** Every key with its entry, least recently seen first. */
  *[Symbol.iterator](): IterableIterator<[string, SeenEntry]> {
    for (let node = this.oldest; node; node = node.newer) yield [node.key, node];
  }

  private insert(key: string, firstSeenAt: number, lastSeenAt: number, count: number): SeenEntry {
    const node: Node = { key, firstSeenAt, lastSeenAt, count, older: undefined, newer: undefined };
    this.entries.set(key, node);
    this.append(node);
    // One key in, at most one out: the least recently seen, when the bound is passed.
    if (this.entries.size > this.limits.maxEntries && this.oldest) {
      const evicted = this.oldest.key;
      this.remove(this.oldest);
      this.onForget(evicted, 'evicted');
    }
    return node;
  }

  private remove(node: Node): void {
    this.entries.delete(node.key);
    this.unlink(node);
  }

  private append(node: Node): void {
    node.older = this.newest;
    node.newer = undefined;
    if (this.newest) this.newest.newer = node;
    else this.oldest = node;
    this.newest = node;
  }

  private unlink(node: Node): void {
    if (node.older) node.older.newer = node.newer;
    else this.oldest = node.newer;
    if (node.newer) node.newer.older = node.older;
    else this.newest = node.older;
    node.older = node.newer = undefined;
  }

  private isExpired(entry: SeenEntry, now: number): boolean {
    return this.limits.windowMs > 0 && now - entry.lastSeenAt >= this.limits.windowMs;
  }
}
