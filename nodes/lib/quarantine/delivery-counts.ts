import type { DeliveryEntry, DeliveryRecord, DeliveryStore } from './delivery-store.js';
import { RecencyMap } from './recency-map.js';
import { pendingCommit, type PendingCommit } from '../pending-commit.js';

export interface DeliveryCountOptions {
  /** Deliveries of one key the flow gets at most; the next one is quarantined. Default 5. */
  maxDeliveries?: number;
  /** Keys counted at most; the least recently delivered goes first. Default 10,000. */
  maxEntries?: number;
  /** Quarantined keys kept at most; the oldest quarantined goes first. Default 1,000. */
  quarantineKeep?: number;
  /** Milliseconds after its latest delivery a counted key is forgotten; 0: never. Default 24 h. */
  forgetAfterMs?: number;
}

/** A key the flow is not given any more, and why. */
export interface QuarantineEntry {
  key: string;
  /** Deliveries the flow got before the key was quarantined: `maxDeliveries` (more if it was lowered since). */
  attempts: number;
  /** Milliseconds since the epoch of the first counted delivery. */
  firstSeen: number;
  /** Of the latest delivery, resends after the quarantine included. */
  lastSeen: number;
  /** The error the flow last ended with, if `failed` was told of one. */
  lastError?: string;
  quarantinedAt: number;
}

/** What `begin` says of one delivery. */
export type DeliveryVerdict =
  | { kind: 'deliver'; /** This delivery's number, 1 for the first. */ attempts: number }
  | { kind: 'quarantine'; entry: QuarantineEntry }
  | { kind: 'quarantined-before'; entry: QuarantineEntry };

export interface BeginOptions {
  /** A new message whose key may have been counted for another one: its count restarts at 1 (see messageKey). */
  fresh?: boolean;
}

/** A counted key: its entry without `quarantinedAt`. */
type CountEntry = Omit<DeliveryEntry, 'quarantinedAt'>;

/** A quarantined key, with the write that puts its quarantine on disk. */
interface Quarantined {
  entry: QuarantineEntry;
  written: Promise<void>;
}

/** What a `begin` changed, to take back when its write fails: the flow never got that delivery. */
type BeginChange =
  { kind: 'counted'; key: string } | { kind: 'quarantined'; key: string; quarantined: Quarantined };

/** The keys changed since the last write: their state in memory is what the next write stores. */
interface PendingWrite extends PendingCommit {
  keys: Set<string>;
  begins: BeginChange[];
  sync: boolean;
  /** Someone waits for this write: it is tried even right after a failed one. */
  awaited: boolean;
}

function pendingWrite(): PendingWrite {
  return { keys: new Set(), begins: [], sync: false, awaited: false, ...pendingCommit() };
}

/** Longest `lastError` kept, in characters: memory and records stay bounded. */
export const MAX_ERROR_LENGTH = 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Counts the deliveries of each message to a flow, so that a message that keeps
 * crashing the flow (or the whole process) is quarantined instead of being
 * delivered for ever.
 *
 * The rule: `begin` counts a delivery before the flow gets it. With `maxDeliveries`
 * N, deliveries 1..N are passed (`deliver`, attempts 1..N); delivery N+1 of a key
 * not completed in between is not (`quarantine`, attempts N: the deliveries the
 * flow got), and every later one is not either (`quarantined-before`, also for a
 * fresh copy), until `forget`. `completed` forgets a key: its next delivery is 1
 * again. `failed` keeps the count and remembers the error for the quarantine entry.
 *
 * Durability: `begin` resolves only once its count is on disk (fsync), because the
 * flow may kill the process synchronously right after: each crash then still
 * counts. A quarantine too is on disk before `begin` says so, so the message can be
 * acknowledged without being lost from view. `completed`, `failed` and the resends
 * of quarantined keys are written without an fsync. `completed` resolves once its
 * delete is written, so the caller acknowledges the message only then: a process
 * that dies after the acknowledgment does not leave the key counted (a power cut
 * may, which only means one extra count if the key is delivered again). A lost
 * error or time only means a less complete quarantine entry.
 *
 * Writes are group committed: the begins of one event-loop turn, and of every turn
 * while a write is on its way to the disk, share one batch write and one fsync,
 * each key once with its state at write time. A failed write rejects its begins
 * and takes their counts back (the caller neither passes nor acknowledges those
 * deliveries), and its keys go with the next write.
 *
 * Bounds: at most `maxEntries` counted keys (the least recently delivered is
 * forgotten first), counted keys forgotten `forgetAfterMs` after their latest
 * delivery, and at most `quarantineKeep` quarantined keys (the oldest quarantine
 * goes first); quarantined keys do not expire with time, they wait for someone to
 * look at them. The store holds what memory holds: what is forgotten is deleted.
 */
export class DeliveryCounts {
  private readonly counting = new RecencyMap<CountEntry>();
  private readonly quarantine = new RecencyMap<Quarantined>();
  private pending = pendingWrite();
  private inFlight: PendingWrite | undefined;
  private writing: Promise<void> | undefined;
  private closing = false;
  private closed = false;
  private readonly maxDeliveries: number;
  private readonly maxEntries: number;
  private readonly quarantineKeep: number;
  private readonly forgetAfterMs: number;

  private constructor(
    private readonly store: DeliveryStore,
    options: DeliveryCountOptions,
  ) {
    this.maxDeliveries = positiveInteger('maxDeliveries', options.maxDeliveries ?? 5);
    this.maxEntries = positiveInteger('maxEntries', options.maxEntries ?? 10_000);
    this.quarantineKeep = positiveInteger('quarantineKeep', options.quarantineKeep ?? 1_000);
    this.forgetAfterMs = options.forgetAfterMs ?? DAY_MS;
    if (!(this.forgetAfterMs >= 0)) throw new RangeError('forgetAfterMs must be 0 or more');
  }

  /** The counts `store` kept; expired ones and those beyond the bounds are dropped, on disk too. */
  static async open(
    store: DeliveryStore,
    options: DeliveryCountOptions = {},
    now = Date.now(),
  ): Promise<DeliveryCounts> {
    const counts = new DeliveryCounts(store, options);
    counts.restore(await store.open(), now);
    if (counts.pending.keys.size > 0) counts.schedule();
    return counts;
  }

  /** Keys being counted. */
  get countingSize(): number {
    return this.counting.size;
  }

  /** Keys quarantined. */
  get quarantinedSize(): number {
    return this.quarantine.size;
  }

  /**
   * Whether `key` was passed to the flow before and has not completed since (counted, not
   * quarantined): after a crash, that message may be the one that crashed it.
   */
  unfinished(key: string, fresh = false): boolean {
    return !fresh && this.quarantine.get(key) === undefined && this.counting.get(key) !== undefined;
  }

  /**
   * Counts a delivery of `key` and says whether to pass it to the flow. Resolves
   * once the count is on disk; rejects when it could not be written, and the
   * delivery then does not count.
   */
  async begin(key: string, now = Date.now(), options: BeginOptions = {}): Promise<DeliveryVerdict> {
    if (this.closing) throw new Error('the delivery counts are closed');
    this.expire(now);
    const quarantined = this.quarantine.get(key);
    if (quarantined) {
      quarantined.entry.lastSeen = now;
      const entry = { ...quarantined.entry };
      this.markChanged(key);
      // Said only once the quarantine is on disk, as for the delivery that made it.
      await quarantined.written;
      return { kind: 'quarantined-before', entry };
    }
    const batch = this.pending;
    const counted = options.fresh ? undefined : this.counting.get(key);
    let verdict: DeliveryVerdict;
    if (counted && counted.attempts >= this.maxDeliveries) {
      this.counting.delete(key);
      const entry: QuarantineEntry = { key, ...counted, lastSeen: now, quarantinedAt: now };
      const record = { entry, written: batch.committed };
      this.addQuarantined(key, record);
      batch.begins.push({ kind: 'quarantined', key, quarantined: record });
      verdict = { kind: 'quarantine', entry: { ...entry } };
    } else {
      const entry = counted ?? { attempts: 0, firstSeen: now, lastSeen: now };
      entry.attempts++;
      entry.lastSeen = now;
      this.addCounted(key, entry);
      batch.begins.push({ kind: 'counted', key });
      verdict = { kind: 'deliver', attempts: entry.attempts };
    }
    this.markChanged(key);
    batch.sync = batch.awaited = true;
    await batch.committed;
    return verdict;
  }

  /**
   * The flow finished with a delivery of `key`: its count is forgotten. Resolves once that was
   * written, or the write failed (the delete then goes with the next write).
   */
  completed(key: string): Promise<void> {
    if (this.closing || !this.counting.delete(key)) return Promise.resolve();
    // Written without an fsync: the delete survives the process, a power cut may lose it.
    const batch = this.pending;
    this.markChanged(key);
    return batch.settled;
  }

  /** The flow ended a delivery of `key` with an error: the count stays, and the error is kept. */
  failed(key: string, errorText: string): void {
    const entry = this.counting.get(key);
    if (this.closing || !entry) return;
    entry.lastError = errorText.slice(0, MAX_ERROR_LENGTH);
    this.markChanged(key);
  }

  /** The quarantined keys, the most recently quarantined last. */
  quarantined(): QuarantineEntry[] {
    return [...this.quarantine].map(([, { entry }]) => ({ ...entry }));
  }

  /**
   * Forgets `key`, quarantined or counted: its next delivery goes to the flow as the
   * first. Resolves once that is on disk, with whether the key was quarantined.
   */
  async forget(key: string): Promise<boolean> {
    if (this.closing) throw new Error('the delivery counts are closed');
    const wasQuarantined = this.quarantine.delete(key);
    if (!wasQuarantined && !this.counting.delete(key)) return false;
    const batch = this.pending;
    this.markChanged(key);
    batch.sync = batch.awaited = true;
    await batch.committed;
    return wasQuarantined;
  }

  /** Resolves once every change so far is written (an fsync only where the rules above ask for one). */
  committed(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the delivery counts are closed'));
    const batch = this.pending;
    if (batch.keys.size === 0) return this.inFlight?.committed ?? Promise.resolve();
    batch.awaited = true;
    this.schedule();
    return batch.committed;
  }

  /** Writes what is pending and closes the store. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // A failed write is given up: the node is going, and the counts stay as the disk has them.
    await this.committed().catch(() => undefined);
    await this.writing;
    this.closed = true;
    await this.store.close();
  }

  /** Deletes the stored counts (the node was deleted). */
  async destroy(): Promise<void> {
    this.closing = this.closed = true;
    await this.writing;
    // Nothing more is written: whoever still waits for a write hears so.
    this.pending.reject(new Error('the delivery counts were destroyed'));
    await this.store.destroy();
  }

  private restore(records: DeliveryRecord[], now: number): void {
    const counted = records.filter(({ entry }) => entry.quarantinedAt === undefined);
    const quarantined = records.filter(({ entry }) => entry.quarantinedAt !== undefined);
    counted.sort((a, b) => a.entry.lastSeen - b.entry.lastSeen);
    quarantined.sort((a, b) => (a.entry.quarantinedAt as number) - (b.entry.quarantinedAt as number));
    for (const { key, entry } of counted) {
      if (this.isExpired(entry, now)) this.markChanged(key);
      else this.addCounted(key, entry);
    }
    for (const { key, entry } of quarantined) {
      const quarantinedAt = entry.quarantinedAt as number;
      this.addQuarantined(key, { entry: { key, ...entry, quarantinedAt }, written: Promise.resolve() });
    }
  }

  private addCounted(key: string, entry: CountEntry): void {
    this.counting.setNewest(key, entry);
    if (this.counting.size <= this.maxEntries) return;
    const [evicted] = this.counting.oldest() as [string, CountEntry];
    this.counting.delete(evicted);
    this.markChanged(evicted);
  }

  private addQuarantined(key: string, quarantined: Quarantined): void {
    this.quarantine.setNewest(key, quarantined);
    if (this.quarantine.size <= this.quarantineKeep) return;
    const [dropped] = this.quarantine.oldest() as [string, Quarantined];
    this.quarantine.delete(dropped);
    this.markChanged(dropped);
  }

  /** Forgets the counted keys whose latest delivery is `forgetAfterMs` old: they are at the oldest end. */
  private expire(now: number): void {
    for (
      let oldest = this.counting.oldest();
      oldest && this.isExpired(oldest[1], now);
      oldest = this.counting.oldest()
    ) {
      this.counting.delete(oldest[0]);
      this.markChanged(oldest[0]);
    }
  }

  private isExpired(entry: CountEntry, now: number): boolean {
    return this.forgetAfterMs > 0 && now - entry.lastSeen >= this.forgetAfterMs;
  }

  private markChanged(key: string): void {
    this.pending.keys.add(key);
    this.schedule();
  }

  private schedule(): void {
    this.writing ??= this.writeLoop();
  }

  /** The state of `key` to store: what memory holds of it, or null to delete it. */
  private recordOf(key: string): DeliveryRecord | null {
    const counted = this.counting.get(key);
    if (counted) return { key, entry: { ...counted } };
    const quarantined = this.quarantine.get(key);
    if (!quarantined) return null;
    return {
      key,
      entry: { ...countEntryOf(quarantined.entry), quarantinedAt: quarantined.entry.quarantinedAt },
    };
  }

  private async writeLoop(): Promise<void> {
    // Let the deliveries of this turn join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.keys.size > 0 && !this.closed) {
      const batch = this.pending;
      this.pending = pendingWrite();
      this.inFlight = batch;
      const put: DeliveryRecord[] = [];
      const del: string[] = [];
      for (const key of batch.keys) {
        const record = this.recordOf(key);
        if (record) put.push(record);
        else del.push(key);
      }
      try {
        await this.store.write({ put, del, sync: batch.sync });
        batch.resolve();
      } catch (error) {
        this.takeBack(batch.begins);
        // The disk holds none of the batch: its keys go with the next write, in their state then.
        for (const key of batch.keys) this.pending.keys.add(key);
        batch.reject(error as Error);
        // Tried again at once only for someone waiting; otherwise with the next change.
        if (!this.pending.awaited) break;
      }
    }
    this.inFlight = undefined;
    this.writing = undefined;
  }

  /** Undoes the begins of a failed write, latest first: the flow did not get those deliveries. */
  private takeBack(begins: BeginChange[]): void {
    for (const change of [...begins].reverse()) {
      if (change.kind === 'counted') {
        const entry = this.counting.get(change.key);
        if (entry && --entry.attempts <= 0) this.counting.delete(change.key);
      } else if (this.quarantine.get(change.key) === change.quarantined) {
        this.quarantine.delete(change.key);
        this.addCounted(change.key, countEntryOf(change.quarantined.entry));
      }
      this.markChanged(change.key);
    }
  }
}

/** The counted state of a quarantined key, as before its quarantine. */
function countEntryOf({ attempts, firstSeen, lastSeen, lastError }: QuarantineEntry): CountEntry {
  return lastError === undefined
    ? { attempts, firstSeen, lastSeen }
    : { attempts, firstSeen, lastSeen, lastError };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a whole number of 1 or more`);
  return value;
}
